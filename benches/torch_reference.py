"""PyTorch figures for the micro-benchmarks in benches/*.rs, printed in the same units,
so the two can be read side by side in one sitting:

    python3 benches/torch_reference.py [THREADS]

matmul (GFLOP/s), elementwise (GB/s), conv2d LeNet shapes (forward and the two
gradients, microseconds), autograd chain (ns per op), the MLP forward+backward (ms),
one Adam step (GB/s: 7 x 4 bytes per parameter element, as in benches/optim.rs) and
GELU on (2048, 512), exact and tanh, forward and `aten::gelu_backward` (microseconds per
call, as benches/gelu.rs at the same thread count).
"""
import sys
import time

import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)


def median_time(fn, min_time=1.0, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


for n in (256, 1024, 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = median_time(lambda: a @ b)
    print(f"matmul_f32/{n}: {2 * n**3 / t / 1e9:.1f} GFLOP/s")

for n in (1 << 20, 1 << 24):
    a, b = torch.randn(n), torch.randn(n)
    for name, fn in (("add", lambda: a + b), ("mul", lambda: a * b),
                     ("unfused_mul_add_relu", lambda: torch.relu(a * b + a))):
        t = median_time(fn)
        print(f"elementwise_f32/{name}/{n}: {3 * 4 * n / t / 1e9:.1f} GB/s")

for name, xs, ws, pad in (("conv1_1x28x28_k5p2", (64, 1, 28, 28), (6, 1, 5, 5), 2),
                          ("conv2_6x14x14_k5", (64, 6, 14, 14), (16, 6, 5, 5), 0)):
    x = torch.randn(*xs)
    w = torch.randn(*ws)
    bias = torch.zeros(ws[0])
    y = torch.nn.functional.conv2d(x, w, bias, padding=pad)
    dy = torch.randn_like(y)
    t = median_time(lambda: torch.nn.functional.conv2d(x, w, bias, padding=pad))
    print(f"conv2d_lenet_b64/{name}/forward: {t * 1e6:.1f} us")
    gi = torch.nn.grad.conv2d_input
    gw = torch.nn.grad.conv2d_weight
    t = median_time(lambda: gi(xs, w, dy, padding=pad))
    print(f"conv2d_lenet_b64/{name}/input_grad: {t * 1e6:.1f} us")
    t = median_time(lambda: gw(x, ws, dy, padding=pad))
    print(f"conv2d_lenet_b64/{name}/weight_grad: {t * 1e6:.1f} us")

x = torch.tensor(0.5, requires_grad=True)


def chain():
    y = x
    for i in range(250):
        y = y * 1.0001 + 0.001 * i
        y = y * x
        y = torch.tanh(y)
    y.backward()


t = median_time(chain)
print(f"autograd/chain_1000_tiny_ops: {t / 1000 * 1e9:.0f} ns/op")

layers = [torch.nn.Linear(784, 512), torch.nn.Linear(512, 256), torch.nn.Linear(256, 10)]
xb = torch.randn(128, 784)
yb = torch.randint(0, 10, (128,))


def mlp():
    h = xb
    for i, layer in enumerate(layers):
        h = layer(h)
        if i + 1 < len(layers):
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, yb)
    loss.backward()


t = median_time(mlp)
print(f"autograd/mlp_784_512_256_10_b128_fwd_bwd: {t * 1e3:.3f} ms")

# One Adam step, foreach implementation, bytes as in benches/optim.rs: per element the
# parameter read and written, the gradient read, both moments read and written.
M = 1 << 20
for name, sizes in (("adam_1M", [M]), ("adam_10M", [10 * M]), ("adam_10x1M", [M] * 10)):
    params = [torch.randn(n, requires_grad=True) for n in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, foreach=True)
    opt.step()  # creates the moments
    t = median_time(opt.step)
    print(f"optim/{name}: {7 * 4 * sum(sizes) / t / 1e9:.1f} GB/s")

# GELU on a (2048, 512) f32 activation: F.gelu and aten::gelu_backward(grad, x), the
# kernels autograd runs (benches/gelu.rs names them forward / backward, tanh_ for the
# approximation, with the thread count).
x, gy = torch.randn(2048, 512), torch.randn(2048, 512)
for name, fn in (("forward", lambda: torch.nn.functional.gelu(x)),
                 ("backward", lambda: torch.ops.aten.gelu_backward(gy, x)),
                 ("tanh_forward", lambda: torch.nn.functional.gelu(x, approximate="tanh")),
                 ("tanh_backward", lambda: torch.ops.aten.gelu_backward(gy, x, approximate="tanh"))):
    t = median_time(fn)
    print(f"gelu_f32_2048x512/{name}/{threads}t: {t * 1e6:.0f} us")
