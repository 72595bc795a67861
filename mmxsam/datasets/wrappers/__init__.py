from .balanced_concat_dataset import BalancedConcatDataset

__all__ = ['BalancedConcatDataset']
