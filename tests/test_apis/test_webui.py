"""The web demo: request logic without a browser, then the real page in headless Chromium (Playwright)."""
import os
import shutil
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmxsam.apis import XSAMInferencer
from mmxsam.apis.webui import editor_image_and_masks, parse_prompt_text, run_request

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


def test_parse_prompt_text():
    assert parse_prompt_text('point 4 5; box 1, 2, 30, 40 ;scribble 1 1 9 9 20 3;') == [
        dict(type='point', xy=[4.0, 5.0]), dict(type='box', xyxy=[1.0, 2.0, 30.0, 40.0]),
        dict(type='scribble', points=[(1.0, 1.0), (9.0, 9.0), (20.0, 3.0)])]
    assert parse_prompt_text('') == []
    with pytest.raises(ValueError, match="prompt entry 1 'box 1 2 3': expected"):
        parse_prompt_text('point 1 2; box 1 2 3')
    with pytest.raises(ValueError, match="prompt entry 0 'point a b': coordinates must be numbers"):
        parse_prompt_text('point a b')


def test_editor_value_to_image_and_masks():
    background = np.zeros((10, 12, 4), np.uint8)
    background[2:8, 3:9] = (10, 20, 30, 255)  # the editor pads the image with transparent pixels
    layer = np.zeros((10, 12, 4), np.uint8)
    layer[4, 4:6, 3] = 255
    empty = np.zeros_like(layer)
    image, masks = editor_image_and_masks(dict(background=background, layers=[layer, empty], composite=None))
    assert image.shape == (6, 6, 3) and tuple(image[0, 0]) == (30, 20, 10)  # RGB -> BGR, cropped
    assert len(masks) == 1 and masks[0].shape == (6, 6) and masks[0].sum() == 2 and masks[0][2, 1:3].all()
    assert editor_image_and_masks(None) == (None, [])


@pytest.fixture(scope='module')
def inferencer(repo_root, tiny_tokenizer_dir):
    cfg = Config.fromfile(f'{repo_root}/configs/_base_/models/xsam_tiny.py')
    cfg.model.llm.tokenizer.name_or_path = tiny_tokenizer_dir
    cfg.model.test_cfg.max_new_tokens = 4
    return XSAMInferencer(cfg)


def test_run_request(inferencer, shapes_root):
    rgb = cv2.cvtColor(cv2.imread(f'{shapes_root}/images/shapes_val_000000.jpg'), cv2.COLOR_BGR2RGB)
    picture, answer, details = run_request(inferencer, rgb, 'genseg', 'circle, square, stuff: sky', '', True)
    assert picture.shape[2] == 3 and details['task'] == 'genseg' and answer
    assert 'Can you segment' in details['question'] and '<p>sky</p>' in details['question']
    picture, answer, details = run_request(inferencer, rgb, 'vgdseg', '', 'point 20 20; box 2 2 40 30', True)
    assert details['question'].count('<region>') == 2
    assert run_request(inferencer, None, 'refseg', 'x')[1] == 'Error: upload an image first'
    assert run_request(inferencer, rgb, 'refseg', '  ')[1].startswith('Error: request 0: refseg needs text')
    assert 'is outside' in run_request(inferencer, rgb, 'intseg', '', 'point 900 2')[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_web_demo_in_headless_chromium(repo_root, shapes_root, tiny_tokenizer_dir, tmp_path):
    """Start demo/webui.py, load the page in Chromium, upload an image, ask a referring question, then draw
    an interactive prompt with the brush: the answer, the result picture and the JSON come back."""
    if CHROMIUM is None or not _has_playwright():
        if os.environ.get('CI'):
            pytest.fail('CI needs Debian chromium and the playwright package (tools/setup_env.sh installs them)')
        pytest.skip('no chromium / playwright here (tools/setup_env.sh installs them)')
    from playwright.sync_api import sync_playwright
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, f'{repo_root}/demo/webui.py', f'{repo_root}/configs/_base_/models/xsam_tiny.py',
         '--port', str(port), '--examples', f'{shapes_root}/images/shapes_val_00000[0-1].jpg', '--cfg-options',
         f'model.llm.tokenizer.name_or_path={tiny_tokenizer_dir}', 'model.test_cfg.max_new_tokens=4'],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _wait_for_server(server, port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={'width': 1280, 'height': 1400})
            page.goto(url, wait_until='domcontentloaded')
            page.wait_for_selector('#run', timeout=60000)
            _upload(page, f'{shapes_root}/images/shapes_val_000001.jpg')
            page.locator('#text textarea, #text input').first.fill('the red circle')
            page.click('#run')
            answer = _wait_for_answer(page, '')
            assert not answer.startswith('Error'), answer
            src = page.locator('#result img').get_attribute('src')
            assert src and '/file=' in src
            assert '"refseg"' in page.locator('#details').inner_text().replace('\n', '')
            # an interactive prompt drawn with the brush on the image
            page.locator('#task input').first.click()
            page.locator('#task input').first.fill('intseg')
            page.keyboard.press('Enter')
            page.locator('#image button[aria-label=Brush]').click()
            box = page.locator('#image canvas').first.bounding_box()
            x, y = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
            page.mouse.move(x - 20, y)
            page.mouse.down()
            page.mouse.move(x + 20, y + 5, steps=8)
            page.mouse.up()
            page.click('#run')
            # the answer text may repeat the first one (an untrained model), so wait for the new request's JSON
            page.wait_for_function("() => (document.querySelector('#details') || {}).innerText?.includes('intseg')",
                                   timeout=120000)
            answer = page.locator('#answer textarea').input_value()
            details = page.locator('#details').inner_text().replace('\n', '')
            assert not answer.startswith('Error'), answer
            assert '<region>' in details  # the drawn layer became the prompt
            page.screenshot(path=str(tmp_path / 'page.png'), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _upload(page, image: str, attempts: int = 3) -> None:
    """Give the image editor a file. The editor has taken it when its "Upload an image" prompt is gone; a
    page whose editor was not mounted yet when the file arrived (about 1 run in 8 here) gets it again."""
    taken = "() => !document.querySelector('#image').innerText.includes('Upload an image')"
    for attempt in range(attempts):
        page.locator('#image input[type=file]').first.set_input_files(image)
        try:
            page.wait_for_function(taken, timeout=20000)
            break
        except Exception:  # playwright's TimeoutError
            if attempt == attempts - 1:
                raise
    page.wait_for_timeout(1000)


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
        return True
    except ImportError:
        return False


def _wait_for_server(server: subprocess.Popen, port: int, timeout: float = 180) -> str:
    start, lines = time.time(), []
    while time.time() - start < timeout:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            raise AssertionError('the web demo exited:\n' + ''.join(lines[-40:]))
        lines.append(line)
        if 'Running on local URL' in line:
            return f'http://127.0.0.1:{port}/'
    raise AssertionError('the web demo did not start in time:\n' + ''.join(lines[-40:]))


def _wait_for_answer(page, previous: str) -> str:
    page.wait_for_function(
        "prev => { const t = document.querySelector('#answer textarea'); return t && t.value.length > 0 && "
        "t.value !== prev; }", arg=previous, timeout=120000)
    return page.locator('#answer textarea').input_value()
