"""モデル: レイヤを組み合わせたネットワーク。/ Models: networks built from layers.

``Model`` は ``Layer`` に計算グラフの描画 (``plot``) を足したものです。
``Sequential`` はレイヤ (や関数) を順に適用し、``MLP`` は全結合層を積み重ねます。
"""
import numpy as np

import stucrs.functions as F
import stucrs.layers as L
from stucrs import cuda, utils
from stucrs.core import Function
from stucrs.layers import Layer

__all__ = ["Model", "Sequential", "MLP", "VGG16", "ResNet", "ResNet50", "ResNet101", "ResNet152",
           "BuildingBlock", "BottleneckA", "BottleneckB", "SqueezeNet"]


class Model(Layer):
    """モデルの基底クラス。/ Base class of models (a Layer that can draw its graph)."""

    def plot(self, *inputs, to_file="model.png"):
        """入力 ``inputs`` で順伝播し、その計算グラフを ``to_file`` に描く (Graphviz が必要)。"""
        y = self.forward(*inputs)
        return utils.plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """レイヤを順に適用するモデル。/ Apply layers (or plain functions such as ``F.relu``) in order.

    例::

        model = Sequential(L.Linear(100), F.relu, L.Linear(10))

    ``Layer`` は ``l0``, ``l1``, ... という名前で登録されます (重みファイルのキーになります)。
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = []
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: element {i} ({type(layer).__name__}) is not a layer or function")
            if isinstance(layer, Layer):
                setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class MLP(Model):
    """多層パーセプトロン。/ Multi-layer perceptron.

    Parameters
    ----------
    fc_output_sizes : tuple of int
        各全結合層の出力サイズ。例えば (10, 3) なら 入力→10→3。
    activation : callable
        最後以外の層のあとに使う活性化関数 (既定 ``F.sigmoid``)。
    """

    def __init__(self, fc_output_sizes, activation=F.sigmoid):
        super().__init__()
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = L.Linear(out_size)
            setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


# =============================================================================
# 画像認識の有名なモデル (本のステップ 58) / well-known image models
# =============================================================================
def _load_pretrained(model, url):
    """学習済みの重みを ``utils.get_file`` で取得して読み込む (ネットワークが必要)。"""
    try:
        path = utils.get_file(url)
    except Exception as e:  # noqa: BLE001 - URLError, HTTPError, OSError ...
        raise RuntimeError(
            f"{type(model).__name__}(pretrained=True) could not download its weights from {url} "
            f"({type(e).__name__}: {e}). Put the file into {utils.cache_dir} by hand, or use "
            f"pretrained=False and model.load_weights(path)."
        ) from None
    model.load_weights(path)


def _global_average_pooling_2d(x):
    """(N, C, H, W) → (N, C): 空間方向の平均。"""
    n, c, h, w = x.shape
    return F.reshape(F.average_pooling(x, (h, w), stride=1), (n, c))


class VGG16(Model):
    """VGG-16 (Simonyan & Zisserman, 2014)。3×3 畳み込み 13 層 + 全結合 3 層、出力は 1000 クラス。

    ``pretrained=True`` なら ImageNet で学習済みの重み (DeZero と同じファイル) をダウンロードして使います。
    入力は :meth:`preprocess` で作る (N, 3, 224, 224) の BGR 画像 (平均を引いたもの)。
    """

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/vgg16.npz"
    _BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

    def __init__(self, pretrained=False):
        super().__init__()
        for b, (channels, n_conv) in enumerate(self._BLOCKS, start=1):
            for k in range(1, n_conv + 1):
                setattr(self, f"conv{b}_{k}", L.Conv2d(channels, kernel_size=3, stride=1, pad=1))
        self.fc6 = L.Linear(4096)
        self.fc7 = L.Linear(4096)
        self.fc8 = L.Linear(1000)
        if pretrained:
            _load_pretrained(self, VGG16.WEIGHTS_PATH)

    def forward(self, x):
        for b, (_, n_conv) in enumerate(self._BLOCKS, start=1):
            for k in range(1, n_conv + 1):
                x = F.relu(getattr(self, f"conv{b}_{k}")(x))
            x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)

    @staticmethod
    def preprocess(image, size=(224, 224), dtype=np.float32):
        """画像を VGG16 の入力 (3, H, W) にする。/ Turn an RGB image into VGG16's input.

        ``image`` は PIL の画像か、(H, W, 3) の RGB 配列。``size`` = (幅, 高さ) に縮小・拡大し、
        BGR の順に並べ替えて ImageNet の平均画素値を引きます。
        """
        if hasattr(image, "convert") and hasattr(image, "resize"):  # PIL.Image
            image = image.convert("RGB")
            if size:
                image = image.resize(size)
            arr = np.asarray(image, dtype=dtype)
        else:
            arr = np.asarray(image, dtype=dtype)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"VGG16.preprocess: expected an (H, W, 3) RGB array, got shape {arr.shape}")
            if size and (arr.shape[1], arr.shape[0]) != tuple(size):
                w, h = size  # 最近傍で縮小・拡大 / nearest-neighbour resize
                rows = (np.arange(h) * arr.shape[0] // h).clip(0, arr.shape[0] - 1)
                cols = (np.arange(w) * arr.shape[1] // w).clip(0, arr.shape[1] - 1)
                arr = arr[rows][:, cols]
        arr = arr[:, :, ::-1] - np.array([103.939, 116.779, 123.68], dtype=dtype)
        return np.ascontiguousarray(arr.transpose((2, 0, 1)), dtype=dtype)


class BottleneckA(Layer):
    """形を変えるボトルネック (1×1 → 3×3 → 1×1 とショートカットの 1×1 畳み込み)。

    ``downsample_fb=True`` なら縮小 (stride) を 3×3 畳み込みで、False なら最初の 1×1 で行います。
    """

    def __init__(self, in_channels, mid_channels, out_channels, stride=2, downsample_fb=False):
        super().__init__()
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = L.Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True, in_channels=in_channels)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True, in_channels=mid_channels)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(out_channels, 1, 1, 0, nobias=True, in_channels=mid_channels)
        self.bn3 = L.BatchNorm()
        self.conv4 = L.Conv2d(out_channels, 1, stride, 0, nobias=True, in_channels=in_channels)
        self.bn4 = L.BatchNorm()

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        shortcut = self.bn4(self.conv4(x))
        return F.relu(h + shortcut)


class BottleneckB(Layer):
    """形を保つボトルネック (ショートカットは恒等写像)。"""

    def __init__(self, in_channels, mid_channels):
        super().__init__()
        self.conv1 = L.Conv2d(mid_channels, 1, 1, 0, nobias=True, in_channels=in_channels)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, 1, 1, nobias=True, in_channels=mid_channels)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(in_channels, 1, 1, 0, nobias=True, in_channels=mid_channels)
        self.bn3 = L.BatchNorm()

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)


class BuildingBlock(Layer):
    """ResNet の段: BottleneckA 1 つ (``a``) と BottleneckB ``n_layers - 1`` 個 (``b1``, ``b2``, ...)。"""

    def __init__(self, n_layers=None, in_channels=None, mid_channels=None, out_channels=None, stride=None,
                 downsample_fb=None):
        super().__init__()
        if n_layers is None or n_layers < 1:
            raise ValueError(f"BuildingBlock needs n_layers >= 1, got {n_layers}")
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, bool(downsample_fb))
        self._forward = ["a"]
        for i in range(1, n_layers):
            name = f"b{i}"
            setattr(self, name, BottleneckB(out_channels, mid_channels))
            self._forward.append(name)

    def forward(self, x):
        for name in self._forward:
            x = getattr(self, name)(x)
        return x


class ResNet(Model):
    """ResNet (He et al., 2015) の 50 / 101 / 152 層版。出力は 1000 クラス。

    ``pretrained=True`` なら ImageNet で学習済みの重み (DeZero と同じファイル) をダウンロードします。
    """

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/resnet{}.npz"
    _BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(self, n_layers=152, pretrained=False):
        super().__init__()
        if n_layers not in self._BLOCKS:
            raise ValueError(f"ResNet: n_layers must be 50, 101 or 152, got {n_layers}")
        block = self._BLOCKS[n_layers]
        self.conv1 = L.Conv2d(64, 7, 2, 3)
        self.bn1 = L.BatchNorm()
        self.res2 = BuildingBlock(block[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(block[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(block[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(block[3], 1024, 512, 2048, 2)
        self.fc6 = L.Linear(1000)
        if pretrained:
            _load_pretrained(self, ResNet.WEIGHTS_PATH.format(n_layers))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, kernel_size=3, stride=2)
        x = self.res5(self.res4(self.res3(self.res2(x))))
        x = _global_average_pooling_2d(x)
        return self.fc6(x)


class ResNet152(ResNet):
    """152 層の ResNet。"""

    def __init__(self, pretrained=False):
        super().__init__(152, pretrained)


class ResNet101(ResNet):
    """101 層の ResNet。"""

    def __init__(self, pretrained=False):
        super().__init__(101, pretrained)


class ResNet50(ResNet):
    """50 層の ResNet。"""

    def __init__(self, pretrained=False):
        super().__init__(50, pretrained)


class _ConcatChannels(Function):
    """チャンネル方向 (axis=1) の連結。"""

    def forward(self, *xs):
        xp = cuda.get_array_module(xs[0])
        self.sizes = [x.shape[1] for x in xs]
        return xp.concatenate(xs, axis=1)

    def backward(self, gy):
        out, start = [], 0
        for size in self.sizes:
            out.append(gy[:, start:start + size])
            start += size
        return tuple(out)


class _Fire(Layer):
    def __init__(self, squeeze, expand):
        super().__init__()
        self.squeeze = L.Conv2d(squeeze, 1)
        self.expand1 = L.Conv2d(expand, 1)
        self.expand3 = L.Conv2d(expand, 3, pad=1)

    def forward(self, x):
        h = F.relu(self.squeeze(x))
        return _ConcatChannels()(F.relu(self.expand1(h)), F.relu(self.expand3(h)))


class SqueezeNet(Model):
    """SqueezeNet 1.1 (Iandola et al., 2016): Fire モジュールを重ねた小さな画像分類モデル (1000 クラス)。

    DeZero 0.0.13 では中身のない雛形ですが、StuCrs では動くネットワークです。
    学習済みの重みは配布されていないので ``pretrained=True`` はエラーになります。
    """

    def __init__(self, pretrained=False):
        super().__init__()
        if pretrained:
            raise ValueError("SqueezeNet: no pretrained weights are published (use pretrained=False)")
        self.conv1 = L.Conv2d(64, 3, stride=2)
        self.fire2, self.fire3 = _Fire(16, 64), _Fire(16, 64)
        self.fire4, self.fire5 = _Fire(32, 128), _Fire(32, 128)
        self.fire6, self.fire7 = _Fire(48, 192), _Fire(48, 192)
        self.fire8, self.fire9 = _Fire(64, 256), _Fire(64, 256)
        self.conv10 = L.Conv2d(1000, 1)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), 3, 2)
        x = F.pooling(self.fire3(self.fire2(x)), 3, 2)
        x = F.pooling(self.fire5(self.fire4(x)), 3, 2)
        x = self.fire9(self.fire8(self.fire7(self.fire6(x))))
        x = F.relu(self.conv10(F.dropout(x, 0.5)))
        return _global_average_pooling_2d(x)
