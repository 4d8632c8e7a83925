"""GC-GAN training (MODELS.md 1.4): WGAN-GP critic, image L1, contrastive landmark embedding.

Warp-guided (model option ``warp_guided``): the pairs are warp pairs (``train/warp_pairs.py``): frame
u moved by the mesh warp to frame v's mesh is the input beside u's crop and v's landmarks, frame v
is the truth; the generator blends the warped crop and its colour through an attention mask, and
the attention regularisers (``w_att`` sparsity outside the mouth and eyes, ``w_tv`` smoothness, in the
same per-element units as the L1) keep it from collapsing to "all warp" or "all generated".

Weights follow the authors' code [C]: image L1 (sum over elements, mean over batch) weight 1,
adversarial 1e-3, and the embedding losses (contrastive + landmark reconstruction) on their own
optimizer. 5 critic steps per generator step; lr x0.98 every 20k steps with a floor of 5e-5.
Triplets (I_u, I_v, g_v) are two frames of one person; reference landmarks come from random frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from reenact.models.gcgan import lmk_to_vector

from ..recipe import Phase, Recipe, RecipeConfig, Stage, TrainingPlan, gradient_penalty, register_recipe


@dataclass
class GCGANRecipeConfig(RecipeConfig):
    batch: int = 64
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 5
    w_adv: float = 1e-3
    w_gp: float = 10.0
    margin: float = 5.0          # contrastive margin on the squared distance
    lr_decay: float = 0.98       # every lr_decay_every steps
    lr_decay_every: int = 20_000
    lr_floor: float = 5e-5
    w_att: float = 0.3           # warp-guided: share of generated pixels outside WarpBatch.free (per element)
    w_tv: float = 0.1            # warp-guided: total variation of the attention mask (per element)


@register_recipe
class GCGANRecipe(Recipe):
    model_id = "gcgan"
    Config = GCGANRecipeConfig
    needs_pairs = True
    tiny = ({"width": 0.25}, {"batch": 8, "n_critic": 1, "lr": 1e-3}, 200)

    def plan(self) -> TrainingPlan:
        m, c = self.model, self.cfg
        opts = {"D": self.adam(m.disc), "G": self.adam(m.gen.g_enc, m.gen.g_dec, m.gen.l_enc),
                "L": self.adam(m.gen.l_enc, m.gen.l_dec)}

        def decay(step: int, _total: int) -> float:
            return max(c.lr_floor / c.lr, c.lr_decay ** (step // c.lr_decay_every))

        stage = Stage("joint", 1.0, [Phase("D", "D", self.d_loss, c.n_critic), Phase("G", "G", self.g_loss),
                                     Phase("L", "L", self.embed_loss)])
        return TrainingPlan(opts, [stage], {k: decay for k in opts}, watch="rec")

    # -- batches ----------------------------------------------------------------------------
    def _triplet(self):
        """(I_u, I_v, g_v, y_v, warp) where warp is the WarpBatch in warp-guided mode, else None."""
        if self.warp_guided:
            wb = self.warp_batch()
            return wb.target, wb.truth, lmk_to_vector(wb.lmk68, self.model.res), wb.label, wb
        a, b = self.data.pairs(self.cfg.batch, self.rng)
        src, tgt = self.data.batch(a), self.data.batch(b)
        return src.img, tgt.img, lmk_to_vector(tgt.lmk68, self.model.res), tgt.label, None

    def _generate(self, i_u, g_v, wb, with_attention: bool = False):
        if wb is None:
            return self.model.gen(i_u, g_v)
        return self.model.gen(i_u, g_v, wb.warped, wb.hole, with_attention=with_attention)

    def per_element(self, out: torch.Tensor) -> float:
        return float(out[0].numel())  # the image L1 is a sum over an image's elements

    # -- losses -----------------------------------------------------------------------------
    def d_loss(self, step: int):
        i_u, i_v, g_v, _, warp = self._triplet()
        with torch.no_grad():
            fake = self._generate(i_u, g_v, warp)
        d = self.model.disc
        wd = d.score(fake).mean() - d.score(i_v).mean()
        gp = gradient_penalty(d.score, i_v, fake)
        return wd + self.cfg.w_gp * gp, {"wdist": -wd.item(), "gp": gp.item()}

    def g_loss(self, step: int):
        i_u, i_v, g_v, _, warp = self._triplet()
        if warp is None:
            fake = self.model.gen(i_u, g_v)
        else:
            fake, att = self._generate(i_u, g_v, warp, with_attention=True)
        l1 = (fake - i_v).abs().flatten(1).sum(1).mean()
        adv = -self.model.disc.score(fake).mean()
        stats = {"rec": (fake - i_v).abs().mean().item(), "adv": adv.item()}
        loss = l1 + self.cfg.w_adv * adv
        if warp is not None:
            penalty, att_stats = self.attention_penalty(fake, att, warp)
            loss = loss + penalty
            stats.update(att_stats)
        return loss, stats

    def embed_loss(self, step: int):
        if self.warp_guided:  # the embedding reads landmarks and labels only: no warp pair to compute
            fr = self.data.batch(self.data.frames(self.cfg.batch, self.rng))
            g_b, y_b = lmk_to_vector(fr.lmk68, self.model.res), fr.label
        else:
            _, _, g_b, y_b, _ = self._triplet()
        ref = self.data.batch(self.data.frames(self.cfg.batch, self.rng))
        g_c = lmk_to_vector(ref.lmk68, self.model.res)
        gen = self.model.gen
        z_b, z_c = gen.l_enc(g_b), gen.l_enc(g_c)
        d2 = (z_b - z_c).pow(2).sum(1)
        same = (y_b == ref.label).float()
        contr = (same * 0.5 * d2 + (1 - same) * 0.5 * torch.relu(self.cfg.margin - d2)).mean()
        lrec = (gen.l_dec(z_b) - g_b).pow(2).sum(1).mean()
        return contr + lrec, {"contrastive": contr.item(), "lmk_rec": lrec.item()}

    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        if self.warp_guided:  # rows: photo u, u warped to v, v (truth), output, attention (white = warp)
            from ..warp_pairs import WarpPairs

            pairs = WarpPairs(self.data, self.data.ds)
            wb = pairs.batch(index, pairs.partners(index, offset=7))
            out, att = self.model.gen(wb.target, lmk_to_vector(wb.lmk68, self.model.res), wb.warped, wb.hole,
                                      with_attention=True)
            return [wb.target, wb.warped, wb.truth, out, (att * 2 - 1).expand(-1, 3, -1, -1)]
        src = self.data.batch(index)
        tgt = self.data.batch(index.roll(1))
        out = self.model.gen(src.img, lmk_to_vector(tgt.lmk68, self.model.res))
        return [src.img, tgt.img, out]
