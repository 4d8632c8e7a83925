"""Cascade EF-GAN training (MODELS.md 5.4): GANimation-style losses [D], two-step schedule [P].

Schedule [P]:
  1. "single": one EF-GAN (the cascade's first stage) learns to go from y_src to y_tgt in one step.
     The later stages are kept equal to it (so the loop's EMA of them is right when step 2 starts),
     and the AU interpolator is warmed up on its own loss alone (no images) [D].
  2. "cascade": its weights are copied into every stage (``CascadeEFGAN.init_from_single``), with
     their Adam moments [D], and the stages and the shared interpolator are fine-tuned end to end.
With ``n_stages == 1`` (fast mode) only step 1 runs.

Per stage k of the cascade (the cascade loss is the equal-weight sum over stages [P]):
  L = L_adv + λ1·L_cond + λ2·L_cont + λ3·L_attn (+ λ4·L_interp once for the interpolator)
  L_adv   WGAN-GP on each stage's output (critic score = mean of D's 2x2 patch scores), λ_gp 10;
          D sees every stage's output as a fake;
  L_cond  MSE between D's AU head on the stage's output and y_k (D's AU head learns the real AUs);
  L_cont  cycle L1: stage k edits its output back to its input's AUs y_(k-1) (y_0 = the source AUs)
          and is compared with its input (GANimation's cycle, per stage; in step 1 this is the
          single EF-GAN's cycle back to the source AUs);
  L_attn  mean(1 - M_A) + 1e-5·TV(M_A), summed over the 4 branches and the refiner, forward and
          cycle pass. MODELS.md writes mean(M_A) citing GANimation, but GANimation penalises the
          mask that keeps the *input* (its I = A·I_in + (1-A)·C); with EF-GAN's I = M_A·M_C +
          (1-M_A)·I_in that mask is 1 - M_A. Penalising M_A itself pushes straight to the "nothing
          is edited" saturation of 5.9; ``attn_mask="edit"`` selects it. TV is summed over pixels
          (as GANimation) and averaged over the batch;
  L_interp  -C(y_k) + ||y_k - ỹ_k||_1 (sum over AUs) for the interpolated targets k < n, ỹ_k the
          evenly spaced pseudo-targets, C the AU critic trained with WGAN-GP on the dataset's AUs.
The source AUs are the input frame's own, the target AUs those of another random frame.
Weights [D]: λ1 4000, λ2 10, λ3 0.1, λ4 1; Adam 1e-4, β (0.5, 0.999), batch 25, 5 critic steps;
"30 epochs with linear decay over the last 10": each stage decays linearly over its last third
(``decay_fraction``). Note GANimation's code divides its AU MSE by the batch size as well, so its
4000 acts as 160 at batch 25; λ1 here multiplies the plain mean (MODELS.md's weight).

Stats (phase G): ``cyc`` (the cycle L1, mean over stages: the watched statistic, both steps),
``cond`` (mean over stages), ``adv``, ``attn``, the mean attention per branch ``attn_<branch>``
over the stages (saturation risk, 5.9), in the cascade the PSNR of each stage's output to the
source ``psnr_s<k>`` (error accumulation, 5.9) and ``interp``/``interp_l1``; phase D: ``wdist``,
``gp``, ``au_real`` (the AU head's MSE on real frames); phase C: the AU critic's ``wdist``, ``gp``.

Warp-guided (model option ``warp_guided``): the image phases draw warp pairs (``train/warp_pairs.py``).
The cascade edits frame u moved by the mesh warp to frame v's mesh (the hole mask beside it in every
stage) from u's own AUs (source, ``self.data`` AUs of u) toward v's AUs (target), and its output is
compared with v in u's crop: ``rec`` = mean |output - v|, weight ``w_rec`` (100, as pix2pix weighs its
L1 against its GAN loss; the supervised pair takes the place of the cycle, which would ask a stage to
undo a geometric change the warp made, and double the generator's cost. At λ2's 10 the WGAN and AU
terms drown it: on 8 real frames the reconstruction then does not fall at all in 100 steps). Kept
from the paper: the schedule (single EF-GAN, then the cascade from copies of it), L_adv (D's real
images are the v frames), L_cond (D's AU head learns v's AUs; each stage's output is judged against
its y_k), the interpolator and its critic. L_attn is replaced by the
warp-guided attention regularisers on the share of the warped crop in the output (``keep_map``, the
product of every stage's (1 - A_global)(1 - A_refine)): ``w_att`` x the generated share, weighted by
1 - ``WarpBatch.free`` (the hole, and the mouth and eyes at 80%, cost nothing or little), plus
``w_tv_att`` x its total variation (per element, in units of the ``w_rec``-weighted L1;
``w_tv`` stays the paper's TV weight in pixel sums, unused here). GANimation's L_attn pushes towards
editing, which would fight a warp that is mostly right. Watched: ``rec``; stats also ``att_generated``,
``warp_rec`` (the warp's own L1 to v) and, in the cascade, ``psnr_s<k>`` of each stage's output to v.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..recipe import Phase, Recipe, RecipeConfig, Stage, TrainingPlan, gradient_penalty, register_recipe, requires_grad

BRANCHES = ("global", "eyes", "nose", "mouth", "refine")


@dataclass
class CEFGANRecipeConfig(RecipeConfig):
    batch: int = 25
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 5
    w_cond: float = 4000.0        # λ1, AU condition (MSE of D's AU head)
    w_cyc: float = 10.0           # λ2, cycle L1
    w_attn: float = 0.1           # λ3, attention mean
    w_tv: float = 1e-5            # attention total variation (inside L_attn)
    attn_mask: str = "keep"       # the mask whose mean L_attn penalises: "keep" = 1 - M_A (GANimation's), "edit" = M_A
    w_interp: float = 1.0         # λ4, interpolator loss
    w_interp_l1: float = 1.0      # L1 to the pseudo-targets inside L_interp
    w_gp: float = 10.0            # λ_gp for both critics
    single_fraction: float = 0.5  # share of the steps for schedule step 1 (the single EF-GAN)
    interp_warmup: bool = True    # train the interpolator (its own loss only) during step 1 too [D]
    interp_repeats: int = 1       # interpolator updates per step during that warm-up (an MLP: cheap)
    decay_fraction: float = 1 / 3  # linear lr decay over this last share of each stage
    w_rec: float = 100.0          # warp-guided: L1 of the output to frame v (mean over elements; see the docstring)
    w_att: float = 0.3            # warp-guided: generated share where not free (x w_rec, per element)
    w_tv_att: float = 0.1         # warp-guided: total variation of the warp's share (x w_rec, per element)
    w_adv_warp: float = 1.0       # warp-guided: weight of L_adv (the paper's 1)

    def validate(self) -> None:
        super().validate()
        if self.attn_mask not in ("keep", "edit"):
            raise ValueError(f"recipe option attn_mask must be 'keep' or 'edit', got {self.attn_mask!r}")
        if self.single_fraction == 0.0:
            raise ValueError("recipe option single_fraction must be in (0, 1], got 0")


def _tv(m: torch.Tensor) -> torch.Tensor:
    """Total variation of Bx1xHxW maps: sum of absolute neighbour differences, mean over the batch."""
    tv = (m[:, :, 1:] - m[:, :, :-1]).abs().flatten(1).sum(1) + (m[..., 1:] - m[..., :-1]).abs().flatten(1).sum(1)
    return tv.mean()


@register_recipe
class CEFGANRecipe(Recipe):
    model_id = "cefgan"
    Config = CEFGANRecipeConfig
    att_tv_option = "w_tv_att"  # w_tv is the paper's TV weight inside L_attn
    # 3 stages at the smallest width; 18 steps of the single EF-GAN, then 12 of the cascade (one CPU thread:
    # ~0.7 s and ~2.3 s a step); λ1 lowered to 1000 (700 leaves too little AU effect), 1 critic step, lr 1e-3
    # without decay, a quicker interpolator warm-up.
    tiny = ({"width": 0.125, "n_res": 1},
            {"batch": 2, "n_critic": 1, "lr": 1e-3, "w_cond": 1000.0, "single_fraction": 0.6, "decay_fraction": 0.0,
             "interp_repeats": 10}, 30)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._single = True   # which generator the last loss call trained (for ``samples``)

    # -- plan -------------------------------------------------------------------------------
    def plan(self) -> TrainingPlan:
        m, c = self.model, self.cfg
        if c.attn_mask not in ("keep", "edit"):
            raise ValueError(f"attn_mask must be 'keep' or 'edit', got {c.attn_mask!r}")
        if not 0.0 < c.single_fraction <= 1.0:
            raise ValueError(f"single_fraction must be in (0, 1], got {c.single_fraction}")
        casc = m.cascade
        n = casc.n_stages
        opts = {"D": self.adam(m.disc), "G1": self.adam(casc.stages[0])}
        single = [Phase("D", "D", lambda s: self.d_loss(s, True), c.n_critic),
                  Phase("G", "G1", lambda s: self.g_loss(s, True))]
        if n > 1:
            opts["C"] = self.adam(m.au_critic)
            if c.interp_warmup:
                opts["I"] = self.adam(casc.interp)
                single += [Phase("C", "C", self.c_loss, c.n_critic), Phase("I", "I", self.i_loss, c.interp_repeats)]
            opts["G"] = self.adam(casc)
        stages = [Stage("single", c.single_fraction if n > 1 else 1.0, single, on_start=self._start_single)]
        if n > 1:
            stages.append(Stage("cascade", 1.0 - c.single_fraction,
                                [Phase("D", "D", lambda s: self.d_loss(s, False), c.n_critic),
                                 Phase("C", "C", self.c_loss, c.n_critic),
                                 Phase("G", "G", lambda s: self.g_loss(s, False))],
                                on_start=self._start_cascade))
        self._opts = opts
        plan = TrainingPlan(opts, stages, watch="rec" if self.warp_guided else "cyc")

        def decay(step: int, total: int) -> float:
            for _st, a, b in plan.stage_bounds(total):
                if a <= step < b:
                    knee = b - c.decay_fraction * (b - a)
                    return 1.0 if step < knee else max(0.0, (b - step) / max(b - knee, 1e-9))
            return 1.0

        plan.lr_schedules = {k: decay for k in opts}
        return plan

    def _start_single(self) -> None:
        self._single = True

    @torch.no_grad()
    def _mirror_single(self) -> None:
        """Keep the later stages equal to the first while it trains alone, so that the loop's EMA of
        them follows the single EF-GAN's EMA and is already right when the cascade starts."""
        casc = self.model.cascade
        sd = casc.stages[0].state_dict()
        for s in casc.stages[1:]:
            s.load_state_dict(sd)

    def _start_cascade(self) -> None:
        """Schedule step 2: the trained single EF-GAN becomes every stage. Its Adam moments go with
        its weights (and the warmed-up interpolator's with its own), so that the cascade's optimizer
        continues where step 1 stopped instead of restarting with full-size first Adam steps."""
        casc = self.model.cascade
        with torch.no_grad():
            casc.init_from_single(casc.stages[0])
        g = self._opts["G"]

        def carry(src_opt, src_params, dst_params):
            for p0, p in zip(src_params, dst_params):
                if p0 in src_opt.state:
                    g.state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in src_opt.state[p0].items()}

        single = list(casc.stages[0].parameters())
        for st in casc.stages:
            carry(self._opts["G1"], single, list(st.parameters()))
        if "I" in self._opts:
            carry(self._opts["I"], list(casc.interp.parameters()), list(casc.interp.parameters()))
        self._single = False

    # -- batches and generators -------------------------------------------------------------
    def _aus(self, idx: torch.Tensor) -> torch.Tensor:
        return self.data.aus[idx.to(self.data.device)]

    def _frame_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of source frames and of another random frame each (whose AUs are the target)."""
        n = len(self.data)
        a = self.data.frames(self.cfg.batch, self.rng)
        b = (a + torch.randint(1, n, a.shape, generator=self.rng)) % n if n > 1 else a
        return a, b

    def _batch(self):
        """Source images, their own AUs, and the AUs of another random frame as the target."""
        a, b = self._frame_pairs()
        src = self.data.batch(a)
        return src.img, src.aus, self._aus(b)

    def _warp(self):
        """Warp-guided batch: (warp pairs, u's own AUs as the source, v's AUs as the target)."""
        wb = self.warp_batch()
        return wb, self._aus(wb.a), wb.aus

    def _edit(self, img: torch.Tensor, au_from: torch.Tensor, au_to: torch.Tensor, single: bool,
              hole: torch.Tensor | None = None):
        """-> (per-stage outputs, per-stage AU targets, per-stage StageOut); ``hole`` for a warp-guided
        cascade (``img`` is then the warped crop)."""
        casc = self.model.cascade
        if single:
            o = casc.stages[0].run(img, au_to, hole)
            return [o.img], [au_to], [o]
        out = casc.run(img, au_from, au_to, hole)
        return out.imgs, out.targets, out.stages

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        """Image critic score per sample: the mean of D's patch scores."""
        return self.model.disc(x)[0].flatten(1).mean(1)

    # -- losses -----------------------------------------------------------------------------
    def d_loss(self, step: int, single: bool):
        c, disc = self.cfg, self.model.disc
        if self.warp_guided:  # real: v (with v's AUs); fakes: the edits of u warped to v
            wb, au_u, au_tgt = self._warp()
            img, au_src = wb.truth, au_tgt
            with torch.no_grad():
                fakes, _, _ = self._edit(wb.warped, au_u, au_tgt, single, wb.hole)
        else:
            img, au_src, au_tgt = self._batch()
            with torch.no_grad():
                fakes, _, _ = self._edit(img, au_src, au_tgt, single)
        fake = torch.cat(fakes)
        s_real, au_pred = disc(img)
        s_real = s_real.flatten(1).mean(1)
        s_fake = self._score(fake)
        wd = s_real.mean() - s_fake.mean()   # mean over the stages' outputs
        gp = gradient_penalty(self._score, img.repeat(len(fakes), 1, 1, 1), fake)
        cond = F.mse_loss(au_pred, au_src)
        loss = -wd + c.w_gp * gp + c.w_cond * cond
        return loss, {"wdist": wd.item(), "gp": gp.item(), "au_real": cond.item()}

    def c_loss(self, step: int):
        """AU critic: WGAN-GP between the dataset's AU vectors and the interpolator's y_k (k < n)."""
        c, casc, crit = self.cfg, self.model.cascade, self.model.au_critic
        a, b = self._frame_pairs()
        au_src, au_tgt = self._aus(a), self._aus(b)
        real = self._aus(self.data.frames(self.cfg.batch, self.rng))
        with torch.no_grad():
            fake = torch.cat(casc.targets(au_src, au_tgt)[:-1])
        wd = crit(real).mean() - crit(fake).mean()
        gp = gradient_penalty(crit, real.repeat(casc.n_stages - 1, 1), fake)
        return -wd + c.w_gp * gp, {"wdist": wd.item(), "gp": gp.item()}

    def _interp_loss(self, au_src: torch.Tensor, au_tgt: torch.Tensor):
        """L_interp summed over the interpolated targets k < n: -C(y_k) + ||y_k - ỹ_k||_1 (sum over AUs)."""
        casc, crit, c = self.model.cascade, self.model.au_critic, self.cfg
        n = casc.n_stages
        loss, l1s = au_src.new_zeros(()), 0.0
        for yk, pk in zip(casc.targets(au_src, au_tgt)[:-1], casc.pseudo_targets(au_src, au_tgt)[:-1]):
            l1 = (yk - pk).abs().sum(1).mean()
            loss = loss - crit(yk).mean() + c.w_interp_l1 * l1
            l1s += l1.item() / (n - 1)
        return loss, l1s

    def i_loss(self, step: int):
        """Interpolator warm-up during schedule step 1: its own loss, no images."""
        a, b = self._frame_pairs()
        requires_grad(self.model.au_critic, False)
        try:
            loss, l1 = self._interp_loss(self._aus(a), self._aus(b))
        finally:
            requires_grad(self.model.au_critic, True)
        return self.cfg.w_interp * loss, {"interp": loss.item(), "interp_l1": l1}

    def per_element(self, out: torch.Tensor) -> float:
        return self.cfg.w_rec  # the warp-guided reconstruction is a per-element mean weighted w_rec

    def g_loss(self, step: int, single: bool):
        if self.warp_guided:
            return self.g_warp_loss(step, single)
        c, m = self.cfg, self.model
        casc, n = m.cascade, (1 if single else m.cascade.n_stages)
        self._single = single
        if single:
            self._mirror_single()
        img, au_src, au_tgt = self._batch()
        requires_grad(m.disc, False)
        requires_grad(m.au_critic, False)
        try:
            imgs, ys, outs = self._edit(img, au_src, au_tgt, single)
            s_fake, au_pred = m.disc(torch.cat(imgs))
            adv = -s_fake.flatten(1).mean(1).mean() * n                       # sum over stages of the mean
            y = torch.cat([t.detach() for t in ys])
            cond = F.mse_loss(au_pred, y) * n
            # per-stage cycle: stage k edits its output back to its input's AUs y_(k-1) (y_0 = au_src)
            stages = casc.stages[:n]
            ins, prev = [img] + imgs[:-1], [au_src] + ys[:-1]
            back_outs = [st.run(x, y0) for st, x, y0 in zip(stages, imgs, prev)]
            cycs = [(b.img - x.detach()).abs().mean() for b, x in zip(back_outs, ins)]
            cyc = torch.stack(cycs).sum()
            attn = img.new_zeros(())
            means = {k: 0.0 for k in BRANCHES}
            for o in outs + back_outs:
                for k in BRANCHES:
                    a = o.attn[k]
                    attn = attn + (a if c.attn_mask == "edit" else 1.0 - a).mean() + c.w_tv * _tv(a)
            for o in outs:
                for k in BRANCHES:
                    means[k] += o.attn[k].mean().item() / len(outs)
            loss = adv + c.w_cond * cond + c.w_cyc * cyc + c.w_attn * attn
            stats = {"cyc": cyc.item() / n, "adv": adv.item(), "cond": cond.item() / n, "attn": attn.item()}
            stats.update({f"attn_{k}": v for k, v in means.items()})
            if not single:
                loss = loss + self._cascade_terms(stats, imgs, img, au_src, au_tgt, n)
        finally:
            requires_grad(m.disc, True)
            requires_grad(m.au_critic, True)
        return loss, stats

    def _cascade_terms(self, stats: dict[str, float], imgs, ref: torch.Tensor, au_src: torch.Tensor,
                       au_tgt: torch.Tensor, n: int) -> torch.Tensor:
        """The cascade's extra G terms: each stage's PSNR against ``ref`` into ``stats``, and the AU
        interpolator's loss (weighted) when there is more than one stage."""
        with torch.no_grad():
            for k, x in enumerate(imgs, 1):
                mse = (x - ref).pow(2).flatten(1).mean(1).clamp_min(1e-10)
                stats[f"psnr_s{k}"] = (10 * torch.log10(4.0 / mse)).mean().item()
        if n <= 1:
            return torch.zeros(())
        interp, l1 = self._interp_loss(au_src, au_tgt)
        stats.update({"interp": interp.item(), "interp_l1": l1})
        return self.cfg.w_interp * interp

    def g_warp_loss(self, step: int, single: bool):
        """Warp-guided G phase (see the module docstring)."""
        from reenact.models.nets.cefgan import keep_map

        c, m = self.cfg, self.model
        n = 1 if single else m.cascade.n_stages
        self._single = single
        if single:
            self._mirror_single()
        wb, au_src, au_tgt = self._warp()
        requires_grad(m.disc, False)
        requires_grad(m.au_critic, False)
        try:
            imgs, ys, outs = self._edit(wb.warped, au_src, au_tgt, single, wb.hole)
            s_fake, au_pred = m.disc(torch.cat(imgs))
            adv = -s_fake.flatten(1).mean(1).mean() * n
            cond = F.mse_loss(au_pred, torch.cat([t.detach() for t in ys])) * n
            out = imgs[-1]
            rec = (out - wb.truth).abs().mean()
            penalty, att_stats = self.attention_penalty(out, keep_map(outs), wb)
            loss = c.w_adv_warp * adv + c.w_cond * cond + c.w_rec * rec + penalty
            stats = {"rec": rec.item(), "adv": adv.item(), "cond": cond.item() / n, **att_stats}
            for k in BRANCHES:
                stats[f"attn_{k}"] = sum(o.attn[k].mean().item() for o in outs) / len(outs)
            if not single:
                loss = loss + self._cascade_terms(stats, imgs, wb.truth, au_src, au_tgt, n)
        finally:
            requires_grad(m.disc, True)
            requires_grad(m.au_critic, True)
        return loss, stats

    # -- samples ----------------------------------------------------------------------------
    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows: input, output toward the next frame's AUs, cycle back to the input's AUs (the single
        EF-GAN during schedule step 1, the cascade after). Warp-guided: photo u, u warped to v, v (truth,
        in u's crop), output toward v's AUs, the warp's share in it (white = warp)."""
        if self.warp_guided:
            from reenact.models.nets.cefgan import keep_map

            from ..warp_pairs import WarpPairs

            pairs = WarpPairs(self.data, self.data.ds)
            wb = pairs.batch(index, pairs.partners(index, offset=7))
            imgs, _, outs = self._edit(wb.warped, self._aus(wb.a), wb.aus, self._single, wb.hole)
            keep = keep_map(outs)
            return [wb.target, wb.warped, wb.truth, imgs[-1].clamp(-1, 1), (keep * 2 - 1).expand(-1, 3, -1, -1)]
        src = self.data.batch(index)
        au_tgt = self._aus(index.roll(1))
        out, _, _ = self._edit(src.img, src.aus, au_tgt, self._single)
        back, _, _ = self._edit(out[-1], au_tgt, src.aus, self._single)
        return [src.img, out[-1].clamp(-1, 1), back[-1].clamp(-1, 1)]
