"""An independent float64 reference of GGHead's generator, written from the documented maths (docs/gghead.md),
on upstream's tensor names, without using core.gghead's modules. Deliberately plain: loops over Gaussians in
numpy for the decoding, an explicit bilinear lookup instead of grid_sample, and for the backbone StyleGAN2's
generic formulation (modulate the input, zero-insert + pad + filter + convolve with the flipped kernel,
demodulate the output) where the implementation uses a fused, transposed convolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

C0 = 0.28209479177387814
FIR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


# ============================================================================ decoding (numpy, per Gaussian)


def bilinear(img: np.ndarray, x: float, y: float) -> np.ndarray:
    """``img [C, H, W]`` at grid point (x, y) in [-1, 1], align_corners=False, zero outside."""
    C, H, W = img.shape
    px, py = ((x + 1) * W - 1) / 2, ((y + 1) * H - 1) / 2
    x0, y0 = math.floor(px), math.floor(py)
    out = np.zeros(C)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= xx < W and 0 <= yy < H:
                out += wx * wy * img[:, yy, xx]
    return out


def softplus(v: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


def decode(uv_map: np.ndarray, grid: np.ndarray, template: np.ndarray, s: dict, conv: tuple | None) -> dict:
    """``uv_map [C, P, P]``, ``grid [G, 2]``, ``template [G, 3]``; ``s`` the decoding settings; ``conv`` =
    (weight [3, 3], bias [3]) of the position convolution or None. Returns the attributes upstream hands its
    rasterizer: positions, log_scales, rotations (its tensor), opacities, sh [G, K, 3]."""
    sizes = {"position": 3, "scale": 3, "rotation": 3 if s["use_rodriguez_rotation"] else 4,
             "color": 3 * (s["sh_degree"] + 1) ** 2, "opacity": 1}
    start, acc = {}, 0
    for name in s["uv_attributes"]:
        start[name] = acc
        acc += sizes[name]
    m = uv_map[:acc].copy()
    if conv is not None:
        p = start["position"]
        w, b = conv
        m[p:p + 3] = np.einsum("oi,ihw->ohw", w, uv_map[p:p + 3]) + b[:, None, None]
    out = {k: [] for k in ("positions", "log_scales", "rotations", "opacities", "sh")}
    for g in range(grid.shape[0]):
        f = bilinear(m, grid[g, 0], grid[g, 1])
        x = {n: f[start[n]: start[n] + sizes[n]] for n in sizes}
        if s["use_position_activation"]:
            pos = template[g] + s["position_range"] * np.tanh(s["position_attenuation"] * x["position"])
        else:
            pos = template[g] + s["position_attenuation"] * x["position"]
        v = -(x["scale"] + s["scale_offset"])
        if s["center_scale_activation"]:
            v = v + s["max_scale"]
        log_scale = s["max_scale"] - softplus(v)
        if s["use_rodriguez_rotation"]:
            a = x["rotation"]
            if s["use_rotation_activation"]:
                a = 2 * math.pi * np.tanh(s["rotation_attenuation"] * a)
            angle = np.linalg.norm(a)
            axis_part = a * (math.sin(angle / 2) / angle if angle > 0 else 0.5)
            w, qx, qy, qz = math.cos(angle / 2), *axis_part
            rot = np.array([qz, w, qx, qy])  # upstream's reorder [3], [0:3]
        else:
            rot = x["rotation"] / np.linalg.norm(x["rotation"])
        col = x["color"]
        if s["use_color_activation"]:
            o = s["color_overshoot"]
            col = (np.tanh(col) * (1 + 2 * o) - o) * 0.5 / C0
        o = s["opacity_overshoot"]
        opacity = 1 / (1 + math.exp(-x["opacity"][0])) * (1 + 2 * o) - o
        if s["clamp_opacity"]:
            opacity = min(max(opacity, 0.0), 1.0)
        for k, val in (("positions", pos), ("log_scales", log_scale), ("rotations", rot), ("opacities", opacity),
                       ("sh", col.reshape(-1, 3))):
            out[k].append(val)
    return {k: np.stack(v) for k, v in out.items()}


# ============================================================================ the backbone (torch float64)


def fc(T: dict, name: str, x: torch.Tensor, act: str = "linear", lr: float = 1.0) -> torch.Tensor:
    w = T[name + ".weight"].double()
    y = x @ (w * (lr / math.sqrt(w.shape[1]))).T + T[name + ".bias"].double() * lr
    return torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2) if act == "lrelu" else y


def norm2(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


def mapping(T: dict, z: torch.Tensor, c: torch.Tensor, num_ws: int, layers: int, psi: float = 1.0,
            cutoff: int | None = None, lr: float = 0.01) -> torch.Tensor:
    x = torch.cat([norm2(z.double()), norm2(fc(T, "backbone.mapping.embed", c.double()))], dim=1)
    for i in range(layers):
        x = fc(T, f"backbone.mapping.fc{i}", x, "lrelu", lr)
    ws = x[:, None].repeat(1, num_ws, 1)
    avg = T["backbone.mapping.w_avg"].double()
    n = num_ws if cutoff is None else cutoff
    ws[:, :n] = avg + psi * (ws[:, :n] - avg)
    return ws


def up2_then_filter(x: torch.Tensor, pad0: int, pad1: int) -> torch.Tensor:
    """Zero-insertion x2 (samples at even indices), zero padding (pad0, pad1), 4x4 FIR (gain 4), valid."""
    N, C, H, W = x.shape
    z = torch.zeros(N, C, 2 * H, 2 * W, dtype=x.dtype)
    z[:, :, ::2, ::2] = x
    z = F.pad(z, (pad0, pad1, pad0, pad1))
    k = torch.tensor(FIR * 4, dtype=x.dtype).flip([0, 1])[None, None].repeat(C, 1, 1, 1)
    return F.conv2d(z, k, groups=C)


def modconv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool, up: int,
            padding: int) -> torch.Tensor:
    """StyleGAN2 modulated convolution, one sample at a time, the unfused way."""
    outs = []
    for b in range(x.shape[0]):
        xb = x[b: b + 1] * styles[b][None, :, None, None]
        if up == 2:
            k = weight.shape[-1]
            xb = up2_then_filter(xb, padding + 2, padding + 1)  # padding with respect to the upsampled image
            yb = F.conv2d(xb, weight.flip([2, 3]))  # a convolution, not a correlation
            assert yb.shape[-1] == 2 * x.shape[-1], (yb.shape, k)
        else:
            yb = F.conv2d(xb, weight, padding=padding)
        if demodulate:
            d = ((weight * styles[b][None, :, None, None]) ** 2).sum(dim=[1, 2, 3])
            yb = yb / torch.sqrt(d + 1e-8)[None, :, None, None]
        outs.append(yb)
    return torch.cat(outs)


def synthesis(T: dict, ws: torch.Tensor, plane: int, noise: bool = True) -> torch.Tensor:
    ws = ws.double()
    x = img = None
    i = 0
    for res in [2 ** j for j in range(2, int(math.log2(plane)) + 1)]:
        b = f"backbone.synthesis.b{res}"
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        if res == 4:
            x = T[f"{b}.const"].double()[None].repeat(ws.shape[0], 1, 1, 1)
        for j, name in enumerate(convs):
            p = f"{b}.{name}"
            W = T[p + ".weight"].double()
            styles = fc(T, p + ".affine", ws[:, i + j])
            x = modconv(x, W, styles, True, 2 if name == "conv0" else 1, W.shape[-1] // 2)
            if noise and p + ".noise_const" in T:
                x = x + T[p + ".noise_const"].double() * T[p + ".noise_strength"].double()
            x = x + T[p + ".bias"].double()[None, :, None, None]
            x = torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
        W = T[f"{b}.torgb.weight"].double()
        styles = fc(T, f"{b}.torgb.affine", ws[:, i + len(convs)]) / math.sqrt(W.shape[1])
        y = modconv(x, W, styles, False, 1, 0) + T[f"{b}.torgb.bias"].double()[None, :, None, None]
        img = y if img is None else up2_then_filter(img, 2, 1) + y
        i += len(convs)
    return img


def forward(T: dict, ws: torch.Tensor, s: dict, plane: int) -> list[dict]:
    """ws [B, num_ws, w] -> per head, the decoded attributes (see :func:`decode`)."""
    img = synthesis(T, ws, plane).numpy()
    conv = None
    if s["use_zero_conv_position"]:
        conv = (T["_zero_conv_position.weight"].double().numpy()[:, :, 0, 0],
                T["_zero_conv_position.bias"].double().numpy())
    grid = T["_uv_grid"].double().numpy()[0, :, 0]
    template = T["_flame_vertices"].double().numpy()[0]
    return [decode(img[b], grid, template, s, conv) for b in range(img.shape[0])]


RELEASED = dict(uv_attributes=("position", "scale", "rotation", "color", "opacity"), sh_degree=1,
                use_rodriguez_rotation=True, use_zero_conv_position=True, use_position_activation=True,
                position_range=0.25, position_attenuation=1.0, scale_offset=-5.0, max_scale=-3.0,
                center_scale_activation=True, use_rotation_activation=True, rotation_attenuation=1.0,
                use_color_activation=True, color_overshoot=0.001, opacity_overshoot=0.001, clamp_opacity=False)
