"""Data preprocessors: batch the SAM input and the image-encoder input from one image per sample."""
from .xsam_data_preprocessor import XSAMDataPreprocessor

__all__ = ['XSAMDataPreprocessor']
