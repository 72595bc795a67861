from .source_grouped_sampler import SourceGroupedSampler

__all__ = ['SourceGroupedSampler']
