#!/usr/bin/python3
"""bench/torch_ref.py — the same Llama training step in PyTorch, for a side-by-side speed ratio.

Optional: needs Debian's python3-torch; exits 0 with a note when it is absent.
usage: torch_ref.py THREADS dDIM/lLAYERS/hHEADS/tSEQ [TOKENS_PER_STEP] [STEPS] [fp32|bf16]
Prints one line: "torch MODEL threads N PRECISION T tok/s". bf16 runs forward and loss under
torch.autocast("cpu", dtype=torch.bfloat16) (matmuls in bf16, fp32 weights and AdamW), the
closest PyTorch counterpart of qat's train.precision: bf16. The model matches model/llama.c: pre-RMSNorm,
fused-free q/k/v/o, RoPE (rotate-half), SwiGLU with h = 32·ceil(8d/3/32), untied head,
vocab 256, AdamW(0.9, 0.95), fp32, causal attention via scaled_dot_product_attention when the
installed torch has it (torch 1.13 does not: explicit softmax attention then).
"""
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch: not installed (apt-get install python3-torch to compare); skipped")
    sys.exit(0)


class Block(nn.Module):
    def __init__(self, d, h, heads):
        super().__init__()
        self.heads = heads
        self.n1 = nn.Parameter(torch.ones(d))
        self.n2 = nn.Parameter(torch.ones(d))
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.gu = nn.Linear(d, 2 * h, bias=False)
        self.down = nn.Linear(h, d, bias=False)

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv(self.rms(x, self.n1)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))

        def rope(t):
            t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
            return torch.cat([t1 * cos - t2 * sin, t2 * cos + t1 * sin], dim=-1)

        q, k = rope(q), rope(k)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(y)
        g, u = self.gu(self.rms(x, self.n2)).chunk(2, dim=-1)
        return x + self.down(F.silu(g) * u)


def main():
    threads = int(sys.argv[1])
    d, L, H, T = (int(p[1:]) for p in sys.argv[2].split("/"))
    tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    precision = sys.argv[5] if len(sys.argv) > 5 else "fp32"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    V, B = 256, tokens // T
    h = 32 * math.ceil((8 * d / 3) / 32)
    emb, head = nn.Embedding(V, d), nn.Linear(d, V, bias=False)
    blocks = nn.ModuleList(Block(d, h, H) for _ in range(L))
    nf = nn.Parameter(torch.ones(d))
    params = list(emb.parameters()) + list(head.parameters()) + list(blocks.parameters()) + [nf]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95))
    hd = d // H
    inv = 10000.0 ** (-torch.arange(0, hd // 2).float() * 2 / hd)
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            z = emb(x)
            for b in blocks:
                z = b(z, cos, sin, mask)
            z = Block.rms(z, nf)
            loss = F.cross_entropy(head(z).view(-1, V).float(), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    print(f"torch {sys.argv[2]} threads {threads} {precision} {B * T / dt:.0f} tok/s (torch {torch.__version__})")


if __name__ == "__main__":
    main()
