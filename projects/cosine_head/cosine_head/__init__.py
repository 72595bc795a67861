from .cosine_classifier import CosineLinear, CosineMask2FormerHead

__all__ = ['CosineLinear', 'CosineMask2FormerHead']
