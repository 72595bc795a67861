"""The Gradio web demo of X-SAM (``demo/webui.py`` starts it): upload an image, pick a task, type a prompt,
draw visual prompts (or type their coordinates), get the answer, the masks drawn and the result as JSON.

The request logic (:func:`run_request`) is plain Python, tested without a browser; :func:`build_demo` wires
it to Gradio components (Gradio is imported only there: ``pip install "gradio>=6.10,<6.11"``).

Visual prompts come from two places, in this order: every brush layer drawn on the image editor is one
mask prompt (the pixels drawn in it), then every ``;``-separated entry of the coordinates box::

    point X Y; box X1 Y1 X2 Y2; scribble X0 Y0 X1 Y1 ...
"""
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .inference import TASKS
from .xsam_inferencer import XSAMInferencer

TASK_HELP = {
    'imgconv': 'a question about the image',
    'genseg': 'class names, comma-separated (prefix stuff classes with "stuff:")',
    'ovseg': 'class names, comma-separated (prefix stuff classes with "stuff:")',
    'refseg': 'a referring expression, e.g. "the red circle"',
    'reaseg': 'a reasoning query, e.g. "the shape with three corners"',
    'gcgseg': '(nothing: the model describes the image and grounds its phrases)',
    'vgdseg': '(nothing: draw or type one or more visual prompts)',
    'intseg': '(nothing: draw or type exactly one visual prompt)',
}


def parse_prompt_text(text: str) -> List[dict]:
    """``'point 40 52; box 1 2 30 40; scribble 1 1 9 9 20 3'`` -> visual-prompt specs, in order."""
    specs = []
    for n, entry in enumerate(e.strip() for e in (text or '').split(';')):
        if not entry:
            continue
        kind, *values = entry.replace(',', ' ').split()
        try:
            numbers = [float(v) for v in values]
        except ValueError as err:
            raise ValueError(f'prompt entry {n} {entry!r}: coordinates must be numbers') from err
        if kind == 'point' and len(numbers) == 2:
            specs.append(dict(type='point', xy=numbers))
        elif kind == 'box' and len(numbers) == 4:
            specs.append(dict(type='box', xyxy=numbers))
        elif kind == 'scribble' and len(numbers) >= 4 and len(numbers) % 2 == 0:
            specs.append(dict(type='scribble', points=list(zip(numbers[::2], numbers[1::2]))))
        else:
            raise ValueError(f'prompt entry {n} {entry!r}: expected "point X Y", "box X1 Y1 X2 Y2" or '
                             '"scribble X0 Y0 X1 Y1 ..."')
    return specs


def editor_image_and_masks(editor) -> Tuple[Optional[np.ndarray], List[np.ndarray]]:
    """A Gradio ImageEditor value (numpy: ``background``, ``layers`` RGBA) -> (BGR image, drawn masks)."""
    if editor is None:
        return None, []
    if isinstance(editor, np.ndarray):
        background, layers = editor, []
    else:
        background, layers = editor.get('background'), editor.get('layers') or []
    if background is None:
        return None, []
    rgb = background[..., :3] if background.ndim == 3 else np.repeat(background[..., None], 3, axis=-1)
    if background.ndim == 3 and background.shape[-1] == 4:  # editor backgrounds come padded with alpha 0
        rows, cols = np.nonzero(background[..., 3])
        if len(rows):
            rgb = rgb[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            layers = [layer[rows.min():rows.max() + 1, cols.min():cols.max() + 1] for layer in layers]
    masks = []
    for layer in layers:
        drawn = layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else np.asarray(layer).any(-1)
        if drawn.any():
            masks.append(drawn)
    return cv2.cvtColor(np.ascontiguousarray(rgb.astype(np.uint8)), cv2.COLOR_RGB2BGR), masks


def run_request(inferencer: XSAMInferencer, editor, task: str, text: str = '', prompt_text: str = '',
                force_seg: bool = False) -> Tuple[Optional[np.ndarray], str, dict]:
    """One web request -> (RGB picture of the result, answer text, JSON-able details). Errors become the
    answer text (``Error: ...``) so the page says what is wrong instead of failing silently."""
    try:
        image, drawn = editor_image_and_masks(editor)
        if image is None:
            raise ValueError('upload an image first')
        if task not in TASKS:
            raise ValueError(f'pick a task ({", ".join(TASKS)})')
        request = dict(img=image, task=task)
        text = (text or '').strip()
        if task in ('genseg', 'ovseg'):
            names = [c.strip() for c in text.split(',') if c.strip()]
            request['categories'] = [c[len('stuff:'):].strip() if c.startswith('stuff:') else c for c in names]
            request['stuff'] = [c[len('stuff:'):].strip() for c in names if c.startswith('stuff:')]
        elif text:
            request['text'] = text
        vprompts = list(drawn) + parse_prompt_text(prompt_text)
        if vprompts:
            request['vprompts'] = vprompts
        out = inferencer(request, return_vis=True, force_seg=force_seg)
    except ValueError as err:
        return None, f'Error: {err}', {}
    result, canvas = out['predictions'][0], out['visualization'][0]
    details = {k: v for k, v in result.items() if k != 'masks'}
    answer = result['answer'] or ''
    if result['warnings']:
        answer += '\n' + '\n'.join(f'Note: {w}' for w in result['warnings'])
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), answer, details


def build_demo(inferencer: XSAMInferencer, examples: Optional[List[str]] = None, title: str = 'X-SAM (mmxsam)'):
    """The Gradio ``Blocks`` of the demo (``.launch()`` it). Element ids for scripted browsers:
    ``#image``, ``#task``, ``#text``, ``#prompts``, ``#force``, ``#run``, ``#answer``, ``#result``, ``#details``."""
    import gradio as gr

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f'# {title}\nUpload an image, pick a task, type the prompt; draw visual prompts on the '
                    'image (one brush layer per prompt) or type them as `point X Y; box X1 Y1 X2 Y2`.')
        with gr.Row():
            with gr.Column():
                editor = gr.ImageEditor(label='image (draw visual prompts on it)', type='numpy', elem_id='image',
                                        sources=['upload', 'clipboard'], image_mode='RGBA')
                task = gr.Dropdown(list(TASKS), value='refseg', label='task', elem_id='task')
                help_box = gr.Markdown(TASK_HELP['refseg'])
                text = gr.Textbox(label='prompt', placeholder='the red circle', elem_id='text')
                prompts = gr.Textbox(label='visual prompts (coordinates)', placeholder='point 40 52; box 5 5 60 48',
                                     elem_id='prompts')
                force = gr.Checkbox(label='force the segmentation answer', value=False, elem_id='force')
                run = gr.Button('Run', variant='primary', elem_id='run')
            with gr.Column():
                result = gr.Image(label='result', type='numpy', elem_id='result', interactive=False)
                answer = gr.Textbox(label='answer', elem_id='answer', interactive=False, lines=3)
                details = gr.JSON(label='details', elem_id='details')
        task.change(lambda t: TASK_HELP.get(t, ''), inputs=task, outputs=help_box)
        run.click(lambda *args: run_request(inferencer, *args), inputs=[editor, task, text, prompts, force],
                  outputs=[result, answer, details])
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[editor])
    return demo


def launch_options() -> dict:
    """Keyword arguments of ``demo.launch()`` (Gradio 6 takes the theme there): system fonts only (no font
    requests to the internet) and no API page link."""
    import gradio as gr
    return dict(theme=gr.themes.Default(font=['sans-serif'], font_mono=['monospace']),
                footer_links=['gradio', 'settings'])
