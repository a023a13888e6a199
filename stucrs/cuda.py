"""GPU (CuPy) と CPU (NumPy) を切り替えるための唯一のスイッチ。

Array-module switch: every code path asks :func:`get_array_module` which module (``numpy`` or
``cupy``) to use, so CPU and GPU share the same code.

CuPy は ``except Exception`` で調べます。CuPy が入っていても GPU やドライバが無い機械では
import や初期化が ImportError 以外の例外で失敗することがあるためです。その場合は NumPy だけで動きます。
"""
import numpy as np

gpu_enable = True
_cupy_error = None
try:
    import cupy as cp

    cupy = cp
    # デバイスが一つも無い (ドライバ不在を含む) 場合は GPU を無効にする
    if cp.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("CuPy is installed but no CUDA device was found")
except Exception as e:  # noqa: BLE001 - CuPy may fail in many ways without a GPU
    gpu_enable = False
    cp = None
    cupy = None
    _cupy_error = e


def _require_gpu():
    if not gpu_enable:
        reason = f" ({type(_cupy_error).__name__}: {_cupy_error})" if _cupy_error else ""
        raise RuntimeError(
            "CuPy / GPU is not available" + reason + ". "
            "Install CuPy (pip install 'stucrs[gpu]') on a machine with a CUDA GPU, "
            "or keep the data on the CPU (to_cpu())."
        )


def _unwrap(x):
    # Variable なら中身の配列を取り出す (cupy.ndarray 自身も .data 属性を持つので型で判定する)
    if isinstance(x, (np.ndarray, np.generic)) or (cp is not None and isinstance(x, cp.ndarray)):
        return x
    return getattr(x, "data", x)


def get_array_module(x):
    """x に合った配列モジュール (numpy か cupy) を返す。/ Return numpy or cupy for ``x``.

    Variable を渡すと、その data の配列モジュールを返します。
    """
    if not gpu_enable:
        return np
    return cp.get_array_module(_unwrap(x))


def as_numpy(x):
    """x を NumPy 配列に変換する (CuPy 配列ならホストへ転送)。/ Convert to a NumPy array."""
    x = _unwrap(x)
    if np.isscalar(x):
        return np.array(x)
    if isinstance(x, np.ndarray):
        return x
    return cp.asnumpy(x)


def as_cupy(x):
    """x を CuPy 配列に変換する (GPU が無ければ分かりやすいエラー)。/ Convert to a CuPy array."""
    x = _unwrap(x)
    _require_gpu()
    return cp.asarray(x)
