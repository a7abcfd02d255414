"""The numba kernels of :mod:`viewer.viewport.cpu_splats` (see there). Importing this module imports
numba; the kernels compile at their first call (cached on disk in ``__pycache__`` beside this file when it is
writable).

Tile, threshold and projection constants are module globals, which numba freezes into the compiled code. They
are written out here, not imported: numba's disk cache is keyed on this file alone, so a constant imported
from another file could change without the cached kernels noticing. ``tests/viewer/test_cpu_splats.py``
checks that they equal those of ``core.render_torch`` and ``viewer.viewport.splats``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ALPHA_THRESHOLD = 1.0 / 255.0  # core.render_torch's rules (see the module docstring)
MAX_ALPHA = 0.999
MAX_EXTEND = 3.33
EPS2D = 0.3
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
QUAD_MARGIN = 1.0 / 64.0  # viewer.viewport.splats.QUAD_MARGIN
TILE_W = 8  # one AVX2 vector of float32 per tile row
TILE_H = 32  # measured on the default model: 16 x 16, 8 x 16, 16 x 8 and 32 x 8 were 6-45 % slower
MIN_TRANSMITTANCE = 1e-4  # core.render_torch.MIN_TRANSMITTANCE
tw, th = TILE_W, TILE_H
thr, max_alpha, t_stop = np.float32(ALPHA_THRESHOLD), np.float32(MAX_ALPHA), np.float32(MIN_TRANSMITTANCE)


@njit(nogil=True, cache=True)
def pixel_range(m, half, lo, hi):
    """Pixels ``[a, b)`` of ``[lo, hi)`` whose centres ``i + 0.5`` lie in ``[m - half, m + half]``."""
    a = max(lo, int(math.ceil(m - half - 0.5)))
    b = min(hi, int(math.floor(m + half - 0.5)) + 1)
    return a, b


@njit(nogil=True, cache=True)
def bin_splats(inst, width, height, tiles_x, tiles_y):
    """``(offsets [tiles + 1], ids)``: tile t's splats, front to back, are ``ids[offsets[t]:offsets[t+1]]``
    (tiles row-major)."""
    n = inst.shape[0]
    counts = np.zeros(tiles_x * tiles_y + 1, np.int64)
    boxes = np.empty((n, 4), np.int64)
    for j in range(n):
        s = n - 1 - j  # the buffer is back to front
        x0, x1 = pixel_range(inst[s, 0], inst[s, 2], 0, width)
        y0, y1 = pixel_range(inst[s, 1], inst[s, 3], 0, height)
        if x1 <= x0 or y1 <= y0:
            boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3] = 0, -1, 0, -1
            continue
        boxes[j, 0], boxes[j, 1] = x0 // tw, (x1 - 1) // tw
        boxes[j, 2], boxes[j, 3] = y0 // th, (y1 - 1) // th
        for ty in range(boxes[j, 2], boxes[j, 3] + 1):
            for tx in range(boxes[j, 0], boxes[j, 1] + 1):
                counts[ty * tiles_x + tx + 1] += 1
    for t in range(tiles_x * tiles_y):
        counts[t + 1] += counts[t]
    fill = counts[:-1].copy()
    ids = np.empty(counts[-1], np.int32)
    for j in range(n):
        for ty in range(boxes[j, 2], boxes[j, 3] + 1):
            for tx in range(boxes[j, 0], boxes[j, 1] + 1):
                t = ty * tiles_x + tx
                ids[fill[t]] = n - 1 - j
                fill[t] += 1
    return counts, ids


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath={"contract", "nsz"})
def raster(inst, offsets, ids, tiles_x, width, height, bg, alpha_mode, out, first, step):
    """Tiles ``first, first + step, ...`` of the image into ``out [H, W, 3]`` uint8."""
    n_px = tw * th
    T = np.empty(n_px, np.float32)  # transmittance; negated once the pixel stopped
    R = np.empty(n_px, np.float32)
    G = np.empty(n_px, np.float32)
    B = np.empty(n_px, np.float32)
    PX = np.empty(n_px, np.float32)  # pixel centres (px)
    PY = np.empty(n_px, np.float32)
    f0, f1, half = np.float32(0.0), np.float32(1.0), np.float32(0.5)
    c2, c3 = np.float32(1.0 / 2.0), np.float32(1.0 / 6.0)
    c4, c5 = np.float32(1.0 / 24.0), np.float32(1.0 / 120.0)
    sixteenth = np.float32(1.0 / 16.0)
    for t in range(first, offsets.shape[0] - 1, step):
        ty = t // tiles_x
        X0, Y0 = (t - ty * tiles_x) * tw, ty * th
        X1, Y1 = min(X0 + tw, width), min(Y0 + th, height)
        for i in range(n_px):
            T[i], R[i], G[i], B[i] = f1, f0, f0, f0
            PX[i] = np.float32(X0 + i % tw) + half
            PY[i] = np.float32(Y0 + i // tw) + half
        for k in range(offsets[t], offsets[t + 1]):
            s = ids[k]
            mx, my, o = inst[s, 0], inst[s, 1], inst[s, 7]
            # sigma / 16 = a16 dx^2 + c16 dy^2 + b16 dx dy (scaling by powers of two is exact)
            a16, b16 = inst[s, 4] * sixteenth * half, inst[s, 5] * sixteenth
            c16 = inst[s, 6] * sixteenth * half
            cr, cg, cb = inst[s, 8], inst[s, 9], inst[s, 10]
            r0, r1 = pixel_range(my, inst[s, 3], Y0, Y1)
            if r1 <= r0:
                continue
            a0, a1 = (r0 - Y0) * tw, (r1 - Y0) * tw
            base = np.uint64(a0)
            for ii in range(a1 - a0):
                i = base + np.uint64(ii)  # unsigned: no negative-index wrap, so LLVM vectorises the loop
                px = PX[i]
                dx, dy = px - mx, PY[i] - my
                s16 = (a16 * dx * dx + c16 * dy * dy) + b16 * dx * dy
                x = min(s16, half)  # beyond sigma = 8 every alpha is far below 1/255
                e = f1 - x * (f1 - x * (c2 - x * (c3 - x * (c4 - x * c5))))
                e = e * e
                e = e * e
                e = e * e
                e = e * e
                alpha = min(max_alpha, o * e)
                ti = T[i]
                hit = (s16 >= f0) & (alpha >= thr) & (ti > f0)
                t_next = ti * (f1 - alpha)
                stop = hit & (t_next <= t_stop)
                add = hit & (t_next > t_stop)
                w = alpha * ti if add else f0
                R[i] += w * cr
                G[i] += w * cg
                B[i] += w * cb
                T[i] = -ti if stop else (t_next if add else ti)
        for y in range(Y0, Y1):
            for x in range(X0, X1):
                i = (y - Y0) * tw + x - X0
                ti = abs(T[i])
                if alpha_mode:
                    v = min(max(f1 - ti, f0), f1) * np.float32(255.0)
                    out[y, x, 0] = out[y, x, 1] = out[y, x, 2] = np.uint8(np.rint(v))
                else:
                    out[y, x, 0] = np.uint8(np.rint(min(max(R[i] + ti * bg[0], f0), f1) * np.float32(255.0)))
                    out[y, x, 1] = np.uint8(np.rint(min(max(G[i] + ti * bg[1], f0), f1) * np.float32(255.0)))
                    out[y, x, 2] = np.uint8(np.rint(min(max(B[i] + ti * bg[2], f0), f1) * np.float32(255.0)))


@njit(nogil=True, cache=True, error_model="numpy")
def project_kernel(means, cov6, opacity, colors, view, K, width, height, scale2):
    """:func:`viewer.viewport.splats.project` for SH degree 0, one Gaussian at a time (float32, the same
    operations in the same order; the box in float64)."""
    f32 = np.float32
    n = means.shape[0]
    fx, fy, cx, cy = f32(K[0]), f32(K[1]), f32(K[2]), f32(K[3])
    R = np.empty((3, 3), np.float32)
    tv = np.empty(3, np.float32)
    for r in range(3):
        tv[r] = f32(view[r, 3])
        for q in range(3):
            R[r, q] = f32(view[r, q])
    tanx, tany = f32(0.5 * width) / fx, f32(0.5 * height) / fy
    lim_x0, lim_x1 = -(cx / fx + f32(0.3) * tanx), (f32(width) - cx) / fx + f32(0.3) * tanx
    lim_y0, lim_y1 = -(cy / fy + f32(0.3) * tany), (f32(height) - cy) / fy + f32(0.3) * tany
    tmp = np.empty((n, 12), np.float32)
    z_all = np.empty(n, np.float32)
    keep = np.zeros(n, np.bool_)
    thr32, eps = f32(thr), f32(EPS2D)
    for i in range(n):
        mxw, myw, mzw = means[i, 0], means[i, 1], means[i, 2]
        x = mxw * R[0, 0] + myw * R[0, 1] + mzw * R[0, 2] + tv[0]
        y = mxw * R[1, 0] + myw * R[1, 1] + mzw * R[1, 2] + tv[1]
        z = mxw * R[2, 0] + myw * R[2, 1] + mzw * R[2, 2] + tv[2]
        op = opacity[i]
        if not (z >= f32(NEAR_PLANE) and z <= f32(FAR_PLANE) and op >= thr32):
            continue
        tx = z * min(max(x / z, lim_x0), lim_x1)
        ty = z * min(max(y / z, lim_y0), lim_y1)
        z2 = z * z
        j0x = fx / z * R[0, 0] - fx * tx / z2 * R[2, 0]
        j0y = fx / z * R[0, 1] - fx * tx / z2 * R[2, 1]
        j0z = fx / z * R[0, 2] - fx * tx / z2 * R[2, 2]
        j1x = fy / z * R[1, 0] - fy * ty / z2 * R[2, 0]
        j1y = fy / z * R[1, 1] - fy * ty / z2 * R[2, 1]
        j1z = fy / z * R[1, 2] - fy * ty / z2 * R[2, 2]
        xx, xy, xz = cov6[i, 0] * scale2, cov6[i, 1] * scale2, cov6[i, 2] * scale2
        yy, yz, zz = cov6[i, 3] * scale2, cov6[i, 4] * scale2, cov6[i, 5] * scale2
        s0x, s0y, s0z = (xx * j0x + xy * j0y + xz * j0z, xy * j0x + yy * j0y + yz * j0z,
                         xz * j0x + yz * j0y + zz * j0z)  # Sigma_3d j0
        s1x, s1y, s1z = (xx * j1x + xy * j1y + xz * j1z, xy * j1x + yy * j1y + yz * j1z,
                         xz * j1x + yz * j1y + zz * j1z)
        a = j0x * s0x + j0y * s0y + j0z * s0z + eps
        b = j0x * s1x + j0y * s1y + j0z * s1z
        c = j1x * s1x + j1y * s1y + j1z * s1z + eps
        det = a * c - b * b
        mx, my = fx * x / z + cx, fy * y / z + cy
        extend = min(f32(math.sqrt(f32(2.0) * f32(math.log(max(op, thr32) / thr32)))), f32(MAX_EXTEND))
        rx = f32(math.ceil(extend * f32(math.sqrt(max(a, f32(0.0))))))
        ry = f32(math.ceil(extend * f32(math.sqrt(max(c, f32(0.0))))))
        if not (det > 0 and (rx > 0 or ry > 0)):
            continue
        if not (mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height):
            continue
        inv = f32(1.0) / det
        A, B, C = c * inv, -b * inv, a * inv
        det_conic = max(float(A) * float(C) - float(B) * float(B), 1e-300)
        e64 = float(extend) * (1.0 + 2.0**-10)
        keep[i] = True
        z_all[i] = z
        tmp[i, 0], tmp[i, 1] = mx, my
        tmp[i, 2] = min(e64 * math.sqrt(max(float(C) / det_conic, 0.0)) + QUAD_MARGIN, float(rx) + 1.0)
        tmp[i, 3] = min(e64 * math.sqrt(max(float(A) / det_conic, 0.0)) + QUAD_MARGIN, float(ry) + 1.0)
        tmp[i, 4], tmp[i, 5], tmp[i, 6], tmp[i, 7] = A, B, C, op
        tmp[i, 8], tmp[i, 9], tmp[i, 10], tmp[i, 11] = colors[i, 0], colors[i, 1], colors[i, 2], f32(0.0)
    sel = np.nonzero(keep)[0]
    order = np.argsort(z_all[sel], kind="mergesort")  # stable; read backwards: back to front
    out = np.empty((len(sel), 12), np.float32)
    m = len(sel)
    for k in range(m):
        out[k] = tmp[sel[order[m - 1 - k]]]
    return out

