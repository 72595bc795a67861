from .center_crop import CenterCropDet

__all__ = ['CenterCropDet']
