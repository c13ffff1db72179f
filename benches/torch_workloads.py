"""PyTorch's side of sinew's workload runner (benches/workloads.rs, models in benches/anchors.rs).

    python benches/torch_workloads.py [THREADS [NAME_PREFIX]]   # time the workloads
    python benches/torch_workloads.py --dump DIR                 # write parity fixtures

Timing is `shared/anchors/bench_torch.py`'s method: 5 warm-up steps, then the median of 5
repetitions of `iters` steps, printed as `name: X ms/step (min Y)`. A training step is zero
grad, forward, loss, backward, optimizer step, in float32. The first five workloads are the
anchors of bench_torch.py, unchanged; the rest are issue 13's.

`--dump DIR` writes, for each model, `DIR/<name>.safetensors` (the state dict, the input
`x`, the targets `y`) and `DIR/<name>.grads.safetensors` (the loss and every parameter's
gradient), which `benches/check_workloads.sh` feeds to sinew's `workload_parity` binary:
both sides must compute the same loss and gradients from the same weights and batch. The
check runs in float64 (the model is initialised in float32, then `.double()`), where the
two must agree to ~1e-10: in float32 a max pool whose window holds two nearly equal values
may route the gradient differently on two sides that both round correctly, which makes
PyTorch's own float32 gradients of the CNN's first convolutions differ from its float64
ones by ~4e-3.
"""
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

dump_dir = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--dump" else None
if dump_dir is None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    torch.set_num_threads(threads)
torch.manual_seed(0)


def bench(name, step, warm=5, iters=30, reps=5):
    if not name.startswith(only):
        return
    for _ in range(warm):
        step()
    meds = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(iters):
            step()
        meds.append((time.perf_counter() - t) / iters * 1e3)
    print(f"{name}: {statistics.median(meds):.3f} ms/step (min {min(meds):.3f})", flush=True)


def train_step(model, opt, x, y, loss_fn):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return step


def infer_step(model, x):
    def step():
        with torch.no_grad():
            model(x)
    return step


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


class LstmClassifier(nn.Module):
    def __init__(s):
        super().__init__()
        s.l = nn.LSTM(32, 128, batch_first=True)
        s.o = nn.Linear(128, 10)

    def forward(s, x):
        out, _ = s.l(x)
        return s.o(out[:, -1])


class Attention(nn.Module):
    def __init__(s, width, heads):
        super().__init__()
        s.heads = heads
        s.qkv = nn.Linear(width, 3 * width)
        s.proj = nn.Linear(width, width)

    def forward(s, x):
        b, t, c = x.shape
        q, k, v = s.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, s.heads, c // s.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return s.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(s, width, heads):
        super().__init__()
        s.ln1 = nn.LayerNorm(width)
        s.attn = Attention(width, heads)
        s.ln2 = nn.LayerNorm(width)
        s.fc1 = nn.Linear(width, 4 * width)
        s.fc2 = nn.Linear(4 * width, width)

    def forward(s, x):
        x = x + s.attn(s.ln1(x))
        return x + s.fc2(F.gelu(s.fc1(s.ln2(x))))


class Gpt(nn.Module):
    """Character GPT: vocabulary 65, context 64, width 128, 4 heads, 2 pre-norm blocks."""

    def __init__(s, vocab=65, context=64, width=128, heads=4, layers=2):
        super().__init__()
        s.tok = nn.Embedding(vocab, width)
        s.pos = nn.Embedding(context, width)
        s.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        s.ln_f = nn.LayerNorm(width)
        s.head = nn.Linear(width, vocab)

    def forward(s, ids):
        x = s.tok(ids) + s.pos(torch.arange(ids.shape[1]))
        for block in s.blocks:
            x = block(x)
        return s.head(s.ln_f(x))


def gpt_loss(logits, y):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def cifar_cnn():
    def conv_bn(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*conv_bn(3, 32), *conv_bn(32, 32), nn.MaxPool2d(2), *conv_bn(32, 64), *conv_bn(64, 64),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4096, 10))


def gpt_batch():
    return torch.randint(0, 65, (32, 64)), torch.randint(0, 65, (32, 64))


def cifar_batch():
    return torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))


def dump(directory):
    """The parity fixtures: weights, batch, loss and gradients of each new training model."""
    from pathlib import Path

    from safetensors.torch import save_file

    Path(directory).mkdir(parents=True, exist_ok=True)
    models = {
        "gpt": (Gpt(), gpt_batch(), gpt_loss),
        "cifar_cnn": (cifar_cnn(), cifar_batch(), F.cross_entropy),
        "mlp": (mlp(), (torch.randn(32, 784), torch.randint(0, 10, (32,))), F.cross_entropy),
        "lstm": (LstmClassifier(), (torch.randn(32, 32, 32), torch.randint(0, 10, (32,))), F.cross_entropy),
    }
    for name, (model, (x, y), loss_fn) in models.items():
        model.double().train()
        x = x.double() if x.is_floating_point() else x
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        loss = loss_fn(model(x), y)
        loss.backward()
        save_file({**state, "x": x.contiguous(), "y": y.contiguous()}, f"{directory}/{name}.safetensors")
        grads = {"loss": loss.detach().reshape(1)}
        grads.update({k: p.grad.contiguous() for k, p in model.named_parameters()})
        save_file(grads, f"{directory}/{name}.grads.safetensors")
        print(f"{name}: loss {loss.item():.6f}, {len(grads) - 1} gradients")


if dump_dir is not None:
    dump(dump_dir)
    sys.exit(0)

# --- the five anchors of bench_torch.py
# 1. seed linreg: 100x1, Dense(1), SGD lr .01, MSE, batch 32 -> one step on 32 rows
m = nn.Linear(1, 1)
opt = torch.optim.SGD(m.parameters(), lr=0.01)
x = torch.rand(32, 1)
y = 3 * x + torch.rand(32, 1)
bench("linreg_step_b32", train_step(m, opt, x, y, F.mse_loss), iters=2000)
# 2. MLP 784-512-256-10, batch 128, SGD momentum, cross entropy
m = mlp()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(128, 784)
y = torch.randint(0, 10, (128,))
bench("mlp_784_512_256_10_b128_sgd", train_step(m, opt, x, y, F.cross_entropy))
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
bench("mlp_784_512_256_10_b128_adam", train_step(m, opt, x, y, F.cross_entropy))
# 3. LeNet-5 style CNN, 1x28x28, batch 64
m = lenet()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(64, 1, 28, 28)
y = torch.randint(0, 10, (64,))
bench("lenet5_b64_sgd", train_step(m, opt, x, y, F.cross_entropy), iters=10)
# 4. LSTM seq 32, batch 32, in 32, hidden 128, classify last step
m = LstmClassifier()
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
x = torch.randn(32, 32, 32)
y = torch.randint(0, 10, (32,))
bench("lstm_t32_b32_h128_adam", train_step(m, opt, x, y, F.cross_entropy), iters=10)

# --- issue 13's workloads
m = Gpt()
opt = torch.optim.Adam(m.parameters(), lr=3e-4)
x, y = gpt_batch()
bench("gpt_char_l2_d128_h4_t64_b32_adam", train_step(m, opt, x, y, gpt_loss), iters=3)
m = cifar_cnn()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x, y = cifar_batch()
bench("cnn_cifar_bn_b64_sgd", train_step(m, opt, x, y, F.cross_entropy), iters=3)
for batch, iters in ((32, 30), (512, 10), (1024, 5)):
    m = mlp()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))
    bench(f"mlp_sgd_b{batch}", train_step(m, opt, x, y, F.cross_entropy), iters=iters)
m = mlp().eval()
bench("mlp_infer_b1", infer_step(m, torch.randn(1, 784)), iters=2000)
m = LstmClassifier().eval()
bench("lstm_infer_b1_t32", infer_step(m, torch.randn(1, 32, 32)), iters=200)


# --- a pretrained encoder's inference: all-MiniLM-L6-v2's architecture (random weights
# of its config: speed does not depend on the values), transformers' BertModel with its
# default sdpa attention, under inference_mode; tokenization excluded
def bert_infer_step(model, ids):
    mask = torch.ones_like(ids)
    def step():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
    return step


if "bert".startswith(only) or only.startswith("bert"):
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        print("bert_minilm_*: skipped (no transformers)", flush=True)
    else:
        torch.manual_seed(0)
        m = BertModel(BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                 intermediate_size=1536)).eval()
        for batch, length, iters in ((1, 16, 200), (32, 128, 3)):
            ids = torch.randint(1, 30522, (batch, length))
            bench(f"bert_minilm_infer_b{batch}_t{length}", bert_infer_step(m, ids), iters=iters)

# --- a GPT-2 language model's generation: 6 blocks, width 384, 6 heads, GPT-2's vocabulary
# (tied head), random weights; 200 greedy tokens after an 8-token prompt with transformers'
# generate and its key/value cache, under inference_mode
def generate_step(model, prompt):
    def step():
        with torch.inference_mode():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=200,
                                 min_new_tokens=200, do_sample=False, use_cache=True, pad_token_id=0)
        assert out.shape[1] == prompt.shape[1] + 200
    return step


if "gpt2_l6_d384_generate200_b1".startswith(only) or only.startswith("gpt2"):
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        print("gpt2_l6_d384_generate200_b1: skipped (no transformers)", flush=True)
    else:
        torch.manual_seed(0)
        m = GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=384, n_head=6)).eval()
        bench("gpt2_l6_d384_generate200_b1", generate_step(m, torch.randint(0, 50257, (1, 8))), iters=1)

# --- matmul throughput (as bench_torch.py)
if "matmul".startswith(only) or only.startswith("matmul"):
    for n in [256, 1024, 2048]:
        a, b = torch.randn(n, n), torch.randn(n, n)
        it = 50 if n <= 256 else (10 if n == 1024 else 3)
        for _ in range(3):
            a @ b
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(it):
                a @ b
            ts.append((time.perf_counter() - t) / it)
        print(f"matmul_f32_{n}: {2 * n**3 / statistics.median(ts) / 1e9:.1f} GFLOP/s", flush=True)
