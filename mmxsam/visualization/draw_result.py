"""Draw one X-SAM result: the image with its predicted masks, the question and the generated answer."""
import textwrap
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

#: BGR colours of successive masks
PALETTE = ((60, 20, 220), (0, 200, 0), (255, 120, 0), (0, 215, 255), (200, 0, 200), (255, 255, 0),
           (0, 128, 255), (128, 0, 128))


def _masks_of(result) -> np.ndarray:
    """(K, H, W) bool masks of a data sample: ``pred_instances.masks``, else the labels of ``pred_sem_seg``."""
    if 'pred_instances' in result and len(result.pred_instances) and 'masks' in result.pred_instances:
        masks = result.pred_instances.masks
        return (masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)).astype(bool)
    if 'pred_sem_seg' in result:  # a label map: one mask per label present (255 = ignore)
        sem = result.pred_sem_seg.sem_seg.cpu().numpy()
        if sem.shape[0] > 1:  # already one binary map per expression
            return sem.astype(bool)
        return np.stack([sem[0] == v for v in np.unique(sem[0]) if v != 255])
    return np.zeros((0, 1, 1), bool)


def draw_xsam_result(image: np.ndarray, result, question: str = '', labels: Optional[Sequence[str]] = None,
                     scale: int = 384, alpha: float = 0.5) -> np.ndarray:
    """Overlay the masks on the image (resized so its longest side is ``scale``) and write the question
    and ``result.pred_text`` below it.

    Args:
        image: (H, W, 3) BGR uint8, the image the result belongs to (masks are at its size).
        result: a ``DetDataSample`` from :func:`mmxsam.apis.inference_xsam` / ``model.test_step``.
        question: the prompt, printed first.
        labels: a name per mask (default: ``mask k``).

    Returns:
        (H', W', 3) BGR uint8 canvas.
    """
    masks = _masks_of(result)
    h, w = image.shape[:2]
    canvas = image.astype(np.float32).copy()
    for k, mask in enumerate(masks):
        if mask.shape != (h, w):
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.array(PALETTE[k % len(PALETTE)], np.float32)
    factor = scale / max(h, w)
    canvas = cv2.resize(canvas.astype(np.uint8), (round(w * factor), round(h * factor)),
                        interpolation=cv2.INTER_NEAREST)
    names = list(labels) if labels is not None else [f'mask {k}' for k in range(len(masks))]
    lines = []
    if question:
        lines += textwrap.wrap('Q: ' + question, 48)
    lines += textwrap.wrap('A: ' + str(result.get('pred_text', '(teacher forcing: no text generated)')), 48)
    lines += [f'{names[k] if k < len(names) else "mask %d" % k}: {int(m.sum())} px' for k, m in enumerate(masks)]
    panel = np.full((18 * len(lines) + 10, max(canvas.shape[1], 420), 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(panel, line, (6, 18 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    top = np.full((canvas.shape[0], panel.shape[1], 3), 255, np.uint8)
    top[:, :canvas.shape[1]] = canvas
    return np.concatenate([top, panel], axis=0)
