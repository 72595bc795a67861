import pytest
import torch
import torch.nn.functional as F

from mmxsam.models.utils import pad_to_multiple, pixel_shuffle, pixel_shuffle_tokens


def _zero_padded_get(x, b, c, y, xx):
    """x[b, c, y, xx], or 0 outside the map (bottom/right zero padding)."""
    if y < x.shape[2] and xx < x.shape[3]:
        return x[b, c, y, xx].item()
    return 0.0


def loop_unshuffle_torch_order(x, r):
    """Independent reference: out[b, c*r*r + i*r + j, y, x] = pad(x)[b, c, r*y+i, r*x+j]."""
    b_, c_, h, w = x.shape
    oh, ow = -(-h // r), -(-w // r)  # ceil
    out = torch.zeros(b_, c_ * r * r, oh, ow, dtype=x.dtype)
    for b in range(b_):
        for c in range(c_):
            for i in range(r):
                for j in range(r):
                    for y in range(oh):
                        for xx in range(ow):
                            out[b, c * r * r + i * r + j, y, xx] = _zero_padded_get(
                                x, b, c, r * y + i, r * xx + j)
    return out


def loop_unshuffle_xsam_order(x):
    """Official order for s=0.5: out[b, (2*i+j)*C + c, y, x] = pad(x)[b, c, 2y+i, 2x+j]."""
    b_, c_, h, w = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    out = torch.zeros(b_, c_ * 4, oh, ow, dtype=x.dtype)
    for b in range(b_):
        for c in range(c_):
            for i in range(2):
                for j in range(2):
                    for y in range(oh):
                        for xx in range(ow):
                            out[b, (2 * i + j) * c_ + c, y, xx] = _zero_padded_get(
                                x, b, c, 2 * y + i, 2 * xx + j)
    return out


def official_steps_channels_last(x, s):
    """Transcription of the official X-SAM pixel_shuffle (channels-last math),
    applied to an NCHW tensor."""
    x = x.permute(0, 2, 3, 1).contiguous()
    b, h, w, c = x.size()
    x = x.reshape(b, h, int(w * s), int(c // s))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(b, int(w * s), int(h * s), int(c // (s * s)))
    x = x.permute(0, 2, 1, 3).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize('shape', [(2, 8, 4, 6), (1, 12, 2, 2), (3, 4, 10, 8)])
def test_matches_torch_even_sizes(shape):
    x = torch.randn(*shape)
    down = pixel_shuffle(x, 0.5)
    assert torch.equal(down, F.pixel_unshuffle(x, 2))
    assert down.shape == (shape[0], shape[1] * 4, shape[2] // 2, shape[3] // 2)
    up = pixel_shuffle(x, 2)
    assert torch.equal(up, F.pixel_shuffle(x, 2))
    assert up.shape == (shape[0], shape[1] // 4, shape[2] * 2, shape[3] * 2)
    # integer and float scales are the same thing
    assert torch.equal(pixel_shuffle(x, 2.0), up)


def test_general_powers_of_two():
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(pixel_shuffle(x, 4), F.pixel_shuffle(x, 4))
    assert torch.equal(pixel_shuffle(x, 0.25), F.pixel_unshuffle(x, 4))
    assert pixel_shuffle(x, 0.125).shape == (2, 32 * 64, 1, 1)


def test_scale_one_is_identity():
    x = torch.randn(1, 3, 5, 7)
    assert pixel_shuffle(x, 1) is x
    assert pixel_shuffle(x, 1.0, channel_order='xsam') is x


@pytest.mark.parametrize('hw', [(5, 7), (3, 3), (4, 5), (1, 1)])
def test_odd_sizes_zero_pad_bottom_right(hw):
    x = torch.randn(2, 3, *hw)
    out = pixel_shuffle(x, 0.5)
    assert out.shape == (2, 12, -(-hw[0] // 2), -(-hw[1] // 2))
    assert torch.equal(out, loop_unshuffle_torch_order(x, 2))


def test_odd_sizes_quarter_scale():
    x = torch.randn(1, 2, 5, 6)
    out = pixel_shuffle(x, 0.25)
    assert out.shape == (1, 32, 2, 2)
    assert torch.equal(out, loop_unshuffle_torch_order(x, 4))


@pytest.mark.parametrize('scale', [0.5, 0.25])
def test_round_trip_is_identity(scale):
    x = torch.randn(2, 5, 8, 12)
    assert torch.equal(pixel_shuffle(pixel_shuffle(x, scale), 1 / scale), x)


def test_xsam_order_matches_official_steps_and_loop():
    x = torch.randn(2, 3, 8, 4)  # the official function does not pad: sizes divisible by 4
    for s in (0.5, 0.25, 2):
        xs = x if s < 1 else torch.randn(2, 16, 3, 5)
        assert torch.equal(pixel_shuffle(xs, s, channel_order='xsam'),
                           official_steps_channels_last(xs, s))
    odd = torch.randn(1, 2, 5, 3)
    assert torch.equal(pixel_shuffle(odd, 0.5, channel_order='xsam'), loop_unshuffle_xsam_order(odd))


def test_xsam_upsample_index_rule():
    # s=2, official order: out[b, c, 2h+i, 2w+j] = in[b, (2*j+i)*C_out + c, h, w]
    x = torch.randn(1, 8, 2, 3)
    out = pixel_shuffle(x, 2, channel_order='xsam')
    c_out = 2
    for c in range(c_out):
        for i in range(2):
            for j in range(2):
                assert torch.equal(out[:, c, i::2, j::2], x[:, (2 * j + i) * c_out + c])


def test_xsam_order_is_a_channel_permutation_of_torch_order():
    x = torch.randn(1, 6, 4, 4)
    a, b = pixel_shuffle(x, 0.5), pixel_shuffle(x, 0.5, channel_order='xsam')
    c = 6
    perm = [(k % 4) * c + k // 4 for k in range(4 * c)]  # torch channel k = c*4 + o -> xsam o*C + c
    assert torch.equal(a, b[:, perm])
    # The official round trip transposes every 2x2 block (it is not the identity).
    rt = pixel_shuffle(b, 2, channel_order='xsam')
    expected = x.view(1, 6, 2, 2, 2, 2).transpose(3, 5).reshape(1, 6, 4, 4)
    assert torch.equal(rt, expected)
    assert not torch.equal(rt, x)


def test_tokens_variant():
    b, h, w, c = 2, 6, 4, 5
    grid = torch.randn(b, c, h, w)
    tokens = grid.flatten(2).transpose(1, 2)  # (B, h*w, C), row-major
    out, (oh, ow) = pixel_shuffle_tokens(tokens, h, w, 0.5)
    assert (oh, ow) == (3, 2)
    assert out.shape == (b, 6, 4 * c)
    assert torch.equal(out, F.pixel_unshuffle(grid, 2).flatten(2).transpose(1, 2))
    # odd grid: padded like the NCHW version
    odd = torch.randn(1, 25, 3)
    out, size = pixel_shuffle_tokens(odd, 5, 5, 0.5, channel_order='xsam')
    assert size == (3, 3) and out.shape == (1, 9, 12)
    ref = pixel_shuffle(odd.transpose(1, 2).reshape(1, 3, 5, 5), 0.5, channel_order='xsam')
    assert torch.equal(out, ref.flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match='grid'):
        pixel_shuffle_tokens(odd, 4, 5, 0.5)
    with pytest.raises(ValueError, match='3-D'):
        pixel_shuffle_tokens(torch.randn(25, 3), 5, 5, 0.5)


def test_pad_to_multiple():
    x = torch.randn(1, 2, 4, 6)
    assert pad_to_multiple(x, 2) is x
    y = pad_to_multiple(torch.ones(1, 1, 3, 5), 4)
    assert y.shape == (1, 1, 4, 8)
    assert y[..., :3, :5].eq(1).all() and y[..., 3:, :].eq(0).all() and y[..., 5:].eq(0).all()
    with pytest.raises(ValueError, match='multiple'):
        pad_to_multiple(x, 0)


def test_bfloat16_and_grad():
    x = torch.randn(1, 4, 5, 5, dtype=torch.bfloat16, requires_grad=True)
    out = pixel_shuffle(x, 0.5)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize('scale', [3, 0.3, 0, -2, 1.5, float('inf'), float('nan'), True, '2'])
def test_rejects_non_power_of_two_scales(scale):
    with pytest.raises(ValueError, match='scale'):
        pixel_shuffle(torch.randn(1, 16, 4, 4), scale)


def test_errors():
    with pytest.raises(ValueError, match='4-D'):
        pixel_shuffle(torch.randn(16, 4, 4), 2)
    with pytest.raises(ValueError, match='divisible by 4'):
        pixel_shuffle(torch.randn(1, 6, 4, 4), 2)
    with pytest.raises(ValueError, match='divisible by 16'):
        pixel_shuffle(torch.randn(1, 8, 4, 4), 4)
    with pytest.raises(ValueError, match='channel_order'):
        pixel_shuffle(torch.randn(1, 4, 4, 4), 2, channel_order='tf')


def test_token_grid():
    from mmxsam.models.utils.pixel_shuffle import token_grid
    assert token_grid(16) == (4, 4)
    assert token_grid(24, (4, 6)) == (4, 6)
    with pytest.raises(ValueError, match='Proj: 24 tokens are not a square grid'):
        token_grid(24, owner='Proj')
    with pytest.raises(ValueError, match='Proj: 24 tokens do not fill a 5 x 5 grid'):
        token_grid(24, (5, 5), owner='Proj')
