from .mask_codec import decode_mask, encode_mask, mask_to_bbox, mask_to_polygons

__all__ = ['decode_mask', 'encode_mask', 'mask_to_bbox', 'mask_to_polygons']
