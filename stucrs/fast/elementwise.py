"""要素ごとの計算を、CPU のキャッシュに収まる区切りごとに回す道具 (NumPy の配列だけ)。

大きな配列を 1 回で計算すると、一時配列がキャッシュからあふれてメモリとの往復が増えます。
``FLAT_BLOCK`` 個ずつ区切れば、区切りごとの一時配列は L2 キャッシュに収まります (第 16 章)。
"""
import numpy as np

# 1 区切りの要素数 (float32 で 128 KiB)
FLAT_BLOCK = 1 << 15

_zero_blocks = {}


def flat_views(*arrays):
    """同じ形・同じメモリの並びの大きな NumPy 配列を、メモリ順の 1 次元ビューにして返す。

    区切る意味がない・区切れないときは None (CuPy の配列、``FLAT_BLOCK`` 以下の配列、形や
    ストライドが揃わない配列、隙間のある配列)。
    """
    first = arrays[0]
    if type(first) is not np.ndarray or first.size <= FLAT_BLOCK:
        return None
    flats = []
    for a in arrays:
        if type(a) is not np.ndarray or a.shape != first.shape or a.strides != first.strides:
            return None
        flat = a.ravel(order="K")  # 隙間のない配列ならコピーせずにビューになる
        if not np.may_share_memory(flat, a):
            return None
        flats.append(flat)
    return flats


def block_ranges(n):
    """0..n を ``FLAT_BLOCK`` 個ずつに区切った (start, stop) の列。"""
    return [(start, min(start + FLAT_BLOCK, n)) for start in range(0, n, FLAT_BLOCK)]


def zero_block(dtype):
    """長さ ``FLAT_BLOCK`` の 0 の配列 (書き込み禁止、dtype ごとに 1 つ)。

    ``np.maximum`` は相手がスカラーより同じ長さの配列のときの方が速い (SIMD のループに乗る)。
    """
    dtype = np.dtype(dtype)
    block = _zero_blocks.get(dtype)
    if block is None or len(block) != FLAT_BLOCK:
        block = np.zeros(FLAT_BLOCK, dtype=dtype)
        block.flags.writeable = False
        _zero_blocks[dtype] = block
    return block
