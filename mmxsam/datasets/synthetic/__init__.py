"""The bundled synthetic multi-task "shapes" data set (see :mod:`.generator` for the layout)."""
from .constants import (CATEGORY_NAMES, SHAPES_INSTANCE_METAINFO, SHAPES_PANOPTIC_METAINFO, STUFF_IDS, THING_IDS,
                        clean_category_name)
from .generator import ShapesConfig, generate_shapes_dataset
from .scene import Scene, sample_scene

__all__ = ['ShapesConfig', 'generate_shapes_dataset', 'Scene', 'sample_scene', 'CATEGORY_NAMES', 'THING_IDS',
           'STUFF_IDS', 'SHAPES_PANOPTIC_METAINFO', 'SHAPES_INSTANCE_METAINFO', 'clean_category_name']
