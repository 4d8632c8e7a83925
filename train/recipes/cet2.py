"""2CET-GAN training (MODELS.md 3.4): two cycles on unpaired neutral / emotional batches.

Cycle (a) N->E->N, with c~ ~ U(-r, r)^32 (r = 0.5):
    L_adv.e (D type 1 on G(x_n, c~)), L_cyc.n = |x_n - G(G(x_n, c~), 0)|, L_code = |c~ - E(G(x_n, c~))|,
    L_ds = 3 mean|c~2 - c~1| * |G(x_n, c~1) - G(x_n, c~2).detach()| per sample, *subtracted*.
Cycle (b) E->N->E:
    L_adv.n (D type 0 on G(x_e, 0)), L_cyc.e = |x_e - G(G(x_e, 0), E(x_e))|.

As in the authors' code [C]: BCE-with-logits non-saturating GAN with R1 (gamma 1, 0.5 E||grad||^2)
on the real images; Adam betas (0, 0.99), weight decay 1e-4, lr 1e-4 for G and D and 1e-6 for E
(G and E share one optimizer, ``GE``, with two parameter groups); dynamic weights lambda_code 0->1
over 5k steps, lambda_ds 1->0 over 10k and lambda_cyc.e 1->1.5 over 10k; the EMA (0.999) of G and E
is the loop's. Each iteration runs 3 sub-batches (``sub_batches``): the first two train both
cycles, the third cycle (a) only; each sub-batch is a D phase then a G+E phase on the same
(x_n, x_e) draw. Augmentation [C]: horizontal flip (p 0.5) and, with p 0.5, a random resized crop
(scale [0.8, 1] of the area, aspect [0.9, 1.1]) back to 128 px.

The watched statistic ``cyc`` is the mean of the two cycle L1s of the first sub-batch (reported by
that phase only); every G+E phase reports ``cyc_n`` / ``cyc_e`` and ``code_std`` (the per-element
std of E(x_e) across the batch: encoder collapse shows as it falling far below the std of the
sampled codes, 0.29 for r = 0.5).

Warp-guided (model option ``warp_guided``): every sub-batch draws warp pairs (``train/warp_pairs.py``)
instead of unpaired neutral / emotional frames. G reads frame u (its ``h``, encoded as it is), u moved
by the mesh warp to frame v's mesh and the warp's hole mask, and the code of v's own pixels (v plays
the paper's reference image, as in cycle (b)), relative to u's: clip(E(v) - E(u), ±0.5). The
runtime's code is the driver's relative to its calibrated neutral (``Cet2CodeSignal``), applied to the
target as its warp applies the driver's motion relative to that neutral: in a pair, the warp moves u
by v's motion relative to u, and the code says the same change (u and v share the pair's colour
jitter, so the code does not read it). The output is compared with v in u's crop (``rec``, L1, weight
``w_rec`` = 100, as pix2pix weighs its L1 against its GAN loss: at 10, on 8 real frames D wins within
20 steps and the adversarial term drives the reconstruction up). The supervised pair takes the place
of the two cycles, whose second pass would need a warp back that a pair does not have.

Kept from the paper: the adversarial loss (D judges v's face type: 0 neutral, 1 emotional; R1 on v),
L_code (E reads back, from the output, the code it was given: here the relative code, detached;
lambda_code ramp as above), the optimizers, weight decay and EMA, except that E learns at
``lr_e_warp`` (1e-4) instead of the paper's 1e-6: here E is trained by the reconstruction (without the
random codes of cycle (a) to read back, a nearly frozen E would leave the code carrying almost
nothing). Dropped: the random codes, and with them L_ds and cycle (a), and the flip / resized-crop
augmentation (the pairs have their own colour jitter). Each GE phase adds the attention regularisers
(``w_att`` sparsity outside ``WarpBatch.free``, ``w_tv`` smoothness; per element, in units of the
``w_rec``-weighted L1). One step runs ``len(sub_batches)`` sub-batches of ``batch`` pairs (a D and a GE
phase each). Watched: ``rec`` = mean |output - v| of the first sub-batch; ``att_generated`` and
``warp_rec`` (the warp's own L1 to v) beside it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..recipe import Phase, Recipe, RecipeConfig, Stage, TrainingPlan, r1_penalty, register_recipe

log = logging.getLogger(__name__)


@dataclass
class Cet2RecipeConfig(RecipeConfig):
    batch: int = 8                       # per group: 8 neutral + 8 emotional frames per sub-batch [C]
    lr: float = 1e-4                     # G and D [C]
    lr_e: float = 1e-6                   # E [C]
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    code_range: float = 0.5              # c~ ~ U(-code_range, code_range) [P]
    w_r1: float = 1.0                    # R1 gamma [C]
    w_adv: float = 1.0
    w_cyc_n: float = 1.0
    lambda_code: float = 1.0             # final weight of L_code, reached at code_ramp_steps [P]
    code_ramp_steps: int = 5_000
    lambda_ds: float = 1.0               # initial weight of L_ds, 0 at ds_decay_steps [P 4.2]
    ds_decay_steps: int = 10_000
    lambda_cyc_e: float = 1.0            # initial weight of L_cyc.e ...
    lambda_cyc_e_end: float = 1.5        # ... reached at cyc_e_ramp_steps [P 4.6]
    cyc_e_ramp_steps: int = 10_000
    sub_batches: tuple[str, ...] = ("ab", "ab", "a")  # cycles trained per sub-batch [C]
    augment: bool = True                 # flip + random resized crop (p 0.5) [C]
    fit_frames: int = 512                # frames used to fit the blendshape-to-code map at each checkpoint
    fit_ridge: float = 0.1
    lr_e_warp: float = 1e-4              # warp-guided: E's lr (E learns from the reconstruction, see above)
    w_rec: float = 100.0                 # warp-guided: L1 of the output to frame v (mean over elements)
    w_att: float = 0.3                   # warp-guided: share of generated pixels where not free (x w_rec)
    w_tv: float = 0.1                    # warp-guided: total variation of the attention mask (x w_rec)

    def validate(self) -> None:
        super().validate()
        for s in self.sub_batches:
            if not s or set(s) - {"a", "b"}:
                raise ValueError(f"recipe option sub_batches: entries must be made of 'a' (N->E->N) and 'b' "
                                 f"(E->N->E), got {s!r}")


def _ramp(step: int, start: float, end: float, steps: int) -> float:
    """Linear from ``start`` at step 0 to ``end`` at ``steps``, then ``end``."""
    if steps <= 0:
        return end
    return start + (end - start) * min(1.0, step / steps)


@register_recipe
class Cet2Recipe(Recipe):
    model_id = "cet2"
    Config = Cet2RecipeConfig
    needs_pairs = False
    # tiny: He init (with PyTorch's default init E's output hardly depends on its input, so another
    # frame's code could change nothing within a few steps); one sub-batch of one neutral and one
    # emotional frame; a 10x G/D lr; the paper's E lr; L_code ramped in 10 steps (L_ds stays ~1);
    # no augmentation (on 8 frames it only adds variance)
    tiny = ({"width": 0.0625, "init": "he"},
            {"batch": 1, "lr": 1e-3, "sub_batches": ("ab",), "code_ramp_steps": 10, "augment": False}, 70)

    def __init__(self, model, cfg, data, features):
        super().__init__(model, cfg, data, features)
        c = self.cfg
        for s in c.sub_batches:
            if not s or set(s) - {"a", "b"}:
                raise ValueError(f"sub_batches entries must be made of 'a' (N->E->N) and 'b' (E->N->E), got {s!r}")
        if not c.sub_batches:
            raise ValueError("sub_batches must name at least one sub-batch")
        self._neutral_pool = self.data.neutral
        if not self.warp_guided:  # warp pairs need no neutral / emotional groups
            # fail before training starts if either group is missing (TrainData.where's message)
            self.data.where(self._neutral_pool, 1, self.rng, "neutral (neutral flag set)")
            self.data.where(~self._neutral_pool, 1, self.rng, "emotional (neutral flag not set)")
            self._warn_unbalanced_people()
        self._sample: tuple[tuple[int, int], torch.Tensor, torch.Tensor] | None = None
        self._warp_sample: tuple[tuple[int, int], object] | None = None

    def _warn_unbalanced_people(self) -> None:
        person = self.data.person.cpu().numpy()
        neutral = self.data.neutral.cpu().numpy()
        lacking = [int(p) for p in np.unique(person) if neutral[person == p].all() or not neutral[person == p].any()]
        if lacking:
            log.warning("cet2: %d of %d people appear only as neutral or only as emotional frames (the paper needs "
                        "every identity in both groups)", len(lacking), len(np.unique(person)))

    # -- plan -------------------------------------------------------------------------------
    def plan(self) -> TrainingPlan:
        m, c = self.model, self.cfg
        betas = (float(c.betas[0]), float(c.betas[1]))  # Adam refuses a mix of int and float (JSON "0")
        opts = {
            "D": torch.optim.Adam(m.D.parameters(), lr=c.lr, betas=betas, weight_decay=c.weight_decay),
            "GE": torch.optim.Adam([{"params": list(m.G.parameters()), "lr": c.lr},
                                    {"params": list(m.E.parameters()), "lr": c.lr_e_warp if self.warp_guided else c.lr_e}],
                                   lr=c.lr, betas=betas, weight_decay=c.weight_decay),
        }
        phases = []
        if self.warp_guided:  # one D and one GE phase per sub-batch of warp pairs (the cycle letters are unused)
            for k in range(len(c.sub_batches)):
                phases.append(Phase(f"D{k + 1}", "D", self._warp_loss_fn(self.warp_d_loss, k)))
                phases.append(Phase(f"GE{k + 1}", "GE", self._warp_loss_fn(self.warp_ge_loss, k)))
            return TrainingPlan(opts, [Stage("joint", 1.0, phases)], {}, watch="rec")
        for k, cycles in enumerate(c.sub_batches):
            phases.append(Phase(f"D{k + 1}", "D", self._d_loss_fn(k, cycles)))
            phases.append(Phase(f"GE{k + 1}", "GE", self._ge_loss_fn(k, cycles)))
        return TrainingPlan(opts, [Stage("joint", 1.0, phases)], {}, watch="cyc")

    @staticmethod
    def _warp_loss_fn(fn, k: int):
        return lambda step: fn(step, k)

    def _d_loss_fn(self, k: int, cycles: str):
        return lambda step: self.d_loss(step, k, cycles)

    def _ge_loss_fn(self, k: int, cycles: str):
        return lambda step: self.ge_loss(step, k, cycles)

    # -- weights ----------------------------------------------------------------------------
    def lambdas(self, step: int) -> dict[str, float]:
        c = self.cfg
        return {"code": _ramp(step, 0.0, c.lambda_code, c.code_ramp_steps),
                "ds": _ramp(step, c.lambda_ds, 0.0, c.ds_decay_steps),
                "cyc_e": _ramp(step, c.lambda_cyc_e, c.lambda_cyc_e_end, c.cyc_e_ramp_steps)}

    # -- batches ----------------------------------------------------------------------------
    def _draw(self, step: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unpaired neutral and emotional images of sub-batch ``k``; the D phase draws them and the G+E
        phase of the same sub-batch reuses them, as the authors' loop does."""
        if self._sample is not None and self._sample[0] == (step, k):
            return self._sample[1], self._sample[2]
        d, n = self.data, self.cfg.batch
        x_n = self._augment(d.batch(d.where(self._neutral_pool, n, self.rng, "neutral (neutral flag set)")).img)
        x_e = self._augment(d.batch(d.where(~self._neutral_pool, n, self.rng, "emotional (neutral flag not set)")).img)
        self._sample = ((step, k), x_n, x_e)
        return x_n, x_e

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Horizontal flip (p 0.5); random resized crop (p 0.5, area [0.8, 1], aspect [0.9, 1.1]) to the same size."""
        if not self.cfg.augment:
            return x
        b, g = x.shape[0], self.rng
        u = torch.rand(b, 6, generator=g)
        flip = torch.where(u[:, 0] < 0.5, -1.0, 1.0)
        crop = u[:, 1] < 0.5
        area = 0.8 + 0.2 * u[:, 2]
        ratio = torch.exp(math.log(0.9) + (math.log(1.1) - math.log(0.9)) * u[:, 3])
        sx = torch.sqrt(area * ratio).clamp(max=1.0)   # crop width / image width
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        sx, sy = torch.where(crop, sx, 1.0), torch.where(crop, sy, 1.0)
        tx = (1 - sx) * (2 * u[:, 4] - 1)              # crop centre, normalised coordinates
        ty = (1 - sy) * (2 * u[:, 5] - 1)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
        theta[:, 1, 1], theta[:, 1, 2] = sy, ty
        theta = theta.to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _codes(self, n: int, like: torch.Tensor) -> torch.Tensor:
        r = self.cfg.code_range
        c = (torch.rand(n, self.model.code_dim, generator=self.rng) * 2 - 1) * r
        return c.to(device=like.device, dtype=like.dtype)

    # -- networks ---------------------------------------------------------------------------
    def _d_frozen(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D logits with D's parameters detached: gradients reach the image, not D."""
        d = self.model.D
        return functional_call(d, {n: p.detach() for n, p in d.named_parameters()}, (x, y))

    def _types(self, cycles: str, n: int, like: torch.Tensor) -> torch.Tensor:
        """Face type judged in each cycle's part of a batch: (a) emotional 1, (b) neutral 0."""
        return torch.cat([torch.full((n,), 1 if cyc == "a" else 0, dtype=torch.long, device=like.device)
                          for cyc in cycles])

    # -- losses -----------------------------------------------------------------------------
    # The cycles of a sub-batch run as one batch through each network (every layer is per sample:
    # instance norms, no batch statistics), with each loss averaged per cycle and summed over
    # cycles, as the authors' separate per-cycle losses are; fewer, larger ops.
    def d_loss(self, step: int, k: int, cycles: str):
        m, c = self.model, self.cfg
        x_n, x_e = self._draw(step, k)
        n, parts = x_n.shape[0], len(cycles)
        # cycle (a): real x_e vs G(x_n, c~), type 1; cycle (b): real x_n vs G(x_e, 0), type 0
        src = torch.cat([x_n if cyc == "a" else x_e for cyc in cycles])
        code = torch.cat([self._codes(n, x_n) if cyc == "a" else m.zero_code(n, x_n) for cyc in cycles])
        real = torch.cat([x_e if cyc == "a" else x_n for cyc in cycles]).detach().requires_grad_(True)
        y = self._types(cycles, n, x_n)
        with torch.no_grad():
            fake = m.G(src, code)
        out_real, out_fake = m.D(torch.cat([real, fake]), torch.cat([y, y])).split(real.shape[0])
        l_real = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real), reduction="none")
        l_fake = F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake), reduction="none")
        r1 = r1_penalty(out_real, real)  # mean over the cycles' equal-sized parts
        total = parts * (l_real.mean() + l_fake.mean() + c.w_r1 * r1)
        stats: dict[str, float] = {"r1": r1.item()}
        for cyc, lr_, lf in zip(cycles, l_real.detach().split(n), l_fake.detach().split(n)):
            tag = "e" if cyc == "a" else "n"
            stats.update({f"real_{tag}": lr_.mean().item(), f"fake_{tag}": lf.mean().item()})
        return total, stats

    def ge_loss(self, step: int, k: int, cycles: str):
        m, c = self.model, self.cfg
        lam = self.lambdas(step)
        x_n, x_e = self._draw(step, k)
        n = x_n.shape[0]
        zero = m.zero_code(n, x_n)
        rand = self._codes(n, x_n) if "a" in cycles else None
        # first pass: (a) G(x_n, c~) -> fake_e, (b) G(x_e, 0) -> fake_n
        src = torch.cat([x_n if cyc == "a" else x_e for cyc in cycles])
        fake = m.G(src, torch.cat([rand if cyc == "a" else zero for cyc in cycles]))
        out = self._d_frozen(fake, self._types(cycles, n, x_n))
        adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out), reduction="none")
        # E: (a) on fake_e (L_code), (b) on x_e (the code that brings the expression back)
        enc = m.encode_code(torch.cat([fake[i * n:(i + 1) * n] if cyc == "a" else x_e
                                       for i, cyc in enumerate(cycles)]))
        # second pass: (a) G(fake_e, 0) ~ x_n, (b) G(fake_n, E(x_e)) ~ x_e
        back = m.G(fake, torch.cat([zero if cyc == "a" else enc[i * n:(i + 1) * n] for i, cyc in enumerate(cycles)]))
        cyc_l1 = (back - src).abs().flatten(1).mean(1)  # src of a part is its cycle's target (x_n / x_e)
        total = x_n.new_zeros(())
        stats: dict[str, float] = {}
        cyc_terms = []
        for i, cyc in enumerate(cycles):
            sl = slice(i * n, (i + 1) * n)
            l_adv, l_cyc = adv[sl].mean(), cyc_l1[sl].mean()
            cyc_terms.append(l_cyc.item())
            if cyc == "a":  # N -> E -> N
                l_code = (enc[sl] - rand).abs().mean()
                total = total + c.w_adv * l_adv + c.w_cyc_n * l_cyc + lam["code"] * l_code
                stats.update({"adv_e": l_adv.item(), "cyc_n": l_cyc.item(), "code": l_code.item()})
                if lam["ds"] > 0:  # diversity, proportional to the code distance [C]; subtracted
                    rand2 = self._codes(n, x_n)
                    with torch.no_grad():
                        fake2 = m.G(x_n, rand2)
                    scale = (rand2 - rand).abs().mean(1) * (3.0 / (2 * c.code_range))
                    ds = (scale * (fake[sl] - fake2).abs().flatten(1).mean(1)).mean()
                    total = total - lam["ds"] * ds
                    stats["ds"] = ds.item()
            else:  # E -> N -> E
                total = total + c.w_adv * l_adv + lam["cyc_e"] * l_cyc
                code_e = enc[sl].detach()
                stats.update({"adv_n": l_adv.item(), "cyc_e": l_cyc.item(), "code_abs": code_e.abs().mean().item()})
                if n > 1:  # encoder collapse shows as this falling far below the sampled codes' std
                    stats["code_std"] = code_e.std(0).mean().item()
        if k == 0:
            stats["cyc"] = sum(cyc_terms) / len(cyc_terms)
            stats.update({f"lambda_{name}": v for name, v in lam.items()})
        return total, stats

    # -- warp-guided losses (see the module docstring) ---------------------------------------
    def _warp_draw(self, step: int, k: int):
        """The warp pairs of sub-batch ``k`` (the D phase draws them, the GE phase reuses them)."""
        if self._warp_sample is not None and self._warp_sample[0] == (step, k):
            return self._warp_sample[1]
        wb = self.warp_batch()
        self._warp_sample = ((step, k), wb)
        return wb

    def warp_code(self, img: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The condition of frame v (``img``): clip(E(v) - E(u), ±0.5) (``ref``: u's images, or their
        codes E(u) when already computed), as the runtime's code is relative to a neutral reference."""
        from reenact.models.signals import Cet2CodeSignal

        lim = Cet2CodeSignal.CLIP
        e_ref = ref if ref.dim() == 2 else self.model.encode_code(ref)
        return (self.model.encode_code(img) - e_ref).clamp(-lim, lim)

    def _v_types(self, wb) -> torch.Tensor:
        """Face type of each pair's frame v, as D judges it: 0 neutral, 1 emotional."""
        return (~self.data.neutral[wb.b.to(self.data.device)]).long().to(wb.truth.device)

    def per_element(self, out: torch.Tensor) -> float:
        return self.cfg.w_rec  # the reconstruction is a per-element mean weighted w_rec

    def warp_d_loss(self, step: int, k: int):
        m, c = self.model, self.cfg
        wb = self._warp_draw(step, k)
        y = self._v_types(wb)
        with torch.no_grad():
            fake = m.G(wb.target, self.warp_code(wb.truth, wb.target), wb.warped, wb.hole)
        real = wb.truth.detach().requires_grad_(True)
        out_real, out_fake = m.D(torch.cat([real, fake]), torch.cat([y, y])).split(real.shape[0])
        l_real = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
        l_fake = F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        r1 = r1_penalty(out_real, real)
        return l_real + l_fake + c.w_r1 * r1, {"real": l_real.item(), "fake": l_fake.item(), "r1": r1.item()}

    def warp_ge_loss(self, step: int, k: int):
        m, c = self.model, self.cfg
        lam = self.lambdas(step)
        wb = self._warp_draw(step, k)
        e_ref = m.encode_code(wb.target)
        code = self.warp_code(wb.truth, e_ref)  # v as the reference image: E learns through the reconstruction
        out, att = m.G(wb.target, code, wb.warped, wb.hole, with_attention=True)
        rec = (out - wb.truth).abs().mean()
        logit = self._d_frozen(out, self._v_types(wb))
        adv = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        l_code = (self.warp_code(out, e_ref.detach()) - code.detach()).abs().mean()
        penalty, att_stats = self.attention_penalty(out, att, wb)
        total = c.w_rec * rec + c.w_adv * adv + lam["code"] * l_code + penalty
        stats = {("rec" if k == 0 else f"rec{k + 1}"): rec.item(), "adv": adv.item(), "code": l_code.item(),
                 "code_abs": code.detach().abs().mean().item(), **att_stats}
        if code.shape[0] > 1:
            stats["code_std"] = code.detach().std(0).mean().item()
        if k == 0:
            stats["lambda_code"] = lam["code"]
        return total, stats

    # -- samples ----------------------------------------------------------------------------
    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows: input x, G(x, code of another frame), cycle back G(G(x, c_other), E(x)). Warp-guided:
        photo u, u warped to v, v (truth, in u's crop), output for v's code, attention (white = warp)."""
        m = self.model
        if self.warp_guided:
            from ..warp_pairs import WarpPairs

            pairs = WarpPairs(self.data, self.data.ds)
            wb = pairs.batch(index, pairs.partners(index, offset=7))
            code = self.warp_code(wb.truth, wb.target)
            out, att = m.G(wb.target, code, wb.warped, wb.hole, with_attention=True)
            return [wb.target, wb.warped, wb.truth, out.clamp(-1, 1), (att * 2 - 1).expand(-1, 3, -1, -1)]
        x = self.data.batch(index).img
        other = self.data.batch(index.roll(1)).img
        fake = m.G(x, m.encode_code(other)).clamp(-1, 1)
        back = m.G(fake, m.encode_code(x)).clamp(-1, 1)
        return [x, fake, back]

    # -- runtime statistics -----------------------------------------------------------------
    @torch.no_grad()
    def before_save(self, ema):
        """Fit ``model.blend_code`` (scripted expressions, MODELS.md 3.8): ridge regression of the EMA
        encoder's code relative to each person's neutral median on the blendshapes relative to that
        person's resting baseline, over up to ``fit_frames`` training frames."""
        fit_blend_code(self.model, ema.get("E", self.model.E), self.data, self.cfg.fit_frames, self.cfg.fit_ridge)


@torch.no_grad()
def fit_blend_code(model, encoder, data, max_frames: int = 512, ridge: float = 0.1) -> float:
    """Sets ``model.blend_code`` [52, code_dim]; returns the fit's R^2 (0 when it cannot be fitted)."""
    from reenact.geometry import clip_baseline
    from reenact.models.nets.cet2 import to_gray

    n = len(data)
    idx = torch.from_numpy(np.linspace(0, n - 1, min(n, max_frames)).round().astype(np.int64))
    codes = []
    for chunk in idx.split(64):
        img = data.batch(chunk).img
        codes.append(encoder(to_gray(img)).float().cpu())
    code = torch.cat(codes).numpy().astype(np.float64)
    blend = data.blend[idx.to(data.blend.device)].cpu().numpy().astype(np.float64)
    person = data.person[idx.to(data.person.device)].cpu().numpy()
    neutral = data.neutral[idx.to(data.neutral.device)].cpu().numpy()
    X, Y = [], []
    for p in np.unique(person):
        m = person == p
        rest = m & neutral
        ref = np.median(code[rest] if rest.any() else code[m], 0)
        X.append(blend[m] - clip_baseline(blend[m]))
        Y.append(code[m] - ref)
    X, Y = np.concatenate(X), np.concatenate(Y)
    X[:, 0] = 0.0
    if len(X) < 8 or not np.isfinite(Y).all():
        return 0.0
    W = np.linalg.solve(X.T @ X + ridge * np.eye(52), X.T @ Y)
    r2 = 1.0 - ((Y - X @ W) ** 2).sum() / max(((Y - Y.mean(0)) ** 2).sum(), 1e-12)
    model.blend_code.copy_(torch.from_numpy(W).to(model.blend_code))
    log.info("2CET-GAN blendshape-to-code map fitted on %d frames (R^2 %.2f)", len(X), r2)
    return float(r2)
