"""DeepSpeed on gloo (CPU processes): wait on every parameter all-gather (a race in DeepSpeed 0.18.9).

``deepspeed.runtime.zero.partition_parameters.Init._allgather_params_coalesced`` - the ZeRO-3 path behind
``GatheredParameters`` and ``param.all_gather()`` - launches one async ``all_gather_into_tensor`` per parameter
and waits on the last handle only ("Wait ensures the operation is enqueued"). NCCL finishes collectives in
stream order, so that is enough on GPUs; gloo runs them on a pool of worker threads that may finish them out of
order, and a parameter is then read before its data arrive (uninitialised memory). Measured on 2 gloo
processes: 1-2 of 10 such calls returned with a gather still running, and one CI run trained a toy to NaN
weights in 3 steps. Waiting on each handle as it is launched removes the race; it costs the overlap of the
gathers, which CPU runs (tests, debugging) do not need.
"""
from mmengine.logging import print_log

_MARK = '_mmxsam_waits_for_every_gather'


def wait_for_every_gather() -> bool:
    """Make ``deepspeed.comm.all_gather_into_tensor`` complete before it returns. Idempotent.

    Returns:
        bool: True when this call installed the wait, False when it was already installed.
    """
    import deepspeed.comm as ds_comm
    launch = ds_comm.all_gather_into_tensor
    if getattr(launch, _MARK, False):
        return False

    def all_gather_into_tensor(*args, **kwargs):
        handle = launch(*args, **kwargs)
        if handle is not None:
            handle.wait()
        return handle

    setattr(all_gather_into_tensor, _MARK, True)
    ds_comm.all_gather_into_tensor = all_gather_into_tensor
    print_log('DeepSpeed on gloo: every parameter all-gather is waited for (DeepSpeed waits on the last one '
              'only, which is not enough on gloo)', logger='current')
    return True
