from .xsam_pixel_decoder import XSAMPixelDecoder

__all__ = ['XSAMPixelDecoder']
