"""wait_for_every_gather: DeepSpeed's async parameter all-gathers complete before they return on gloo.

The end-to-end check is test_deepspeed_checkpoint.py (ZeRO-3 on 2 gloo processes through build_runner); here,
the wrapper itself with a recording stand-in for the gloo collective.
"""
import pytest

deepspeed_comm = pytest.importorskip('deepspeed.comm')

from mmxsam.utils.deepspeed_gloo import wait_for_every_gather  # noqa: E402


class _Handle:
    def __init__(self, log):
        self.log = log

    def wait(self):
        self.log.append('wait')


def test_every_async_gather_is_waited_for_once_installed(monkeypatch):
    log = []

    def launch(output, input_, group=None, async_op=False):
        log.append(('launch', output, input_, async_op))
        return _Handle(log) if async_op else None

    monkeypatch.setattr(deepspeed_comm, 'all_gather_into_tensor', launch)
    assert wait_for_every_gather() is True
    assert wait_for_every_gather() is False  # idempotent: not wrapped twice
    handle = deepspeed_comm.all_gather_into_tensor('out', 'in', async_op=True)
    assert isinstance(handle, _Handle)
    assert log == [('launch', 'out', 'in', True), 'wait']  # waited before the caller sees the handle
    log.clear()
    assert deepspeed_comm.all_gather_into_tensor('out', 'in') is None  # synchronous calls pass through
    assert log == [('launch', 'out', 'in', False)]
