"""GC-GAN training (MODELS.md 1.4): WGAN-GP critic, image L1, contrastive landmark embedding.

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
        a, b = self.data.pairs(self.cfg.batch, self.rng)
        src, tgt = self.data.batch(a), self.data.batch(b)
        return src.img, tgt.img, lmk_to_vector(tgt.lmk68, self.model.res), tgt.label

    # -- losses -----------------------------------------------------------------------------
    def d_loss(self, step: int):
        i_u, i_v, g_v, _ = self._triplet()
        with torch.no_grad():
            fake = self.model.gen(i_u, g_v)
        d = self.model.disc
        wd = d.score(fake).mean() - d.score(i_v).mean()
        gp = gradient_penalty(d.score, i_v, fake)
        return wd + self.cfg.w_gp * gp, {"wdist": -wd.item(), "gp": gp.item()}

    def g_loss(self, step: int):
        i_u, i_v, g_v, _ = self._triplet()
        fake = self.model.gen(i_u, g_v)
        l1 = (fake - i_v).abs().flatten(1).sum(1).mean()
        adv = -self.model.disc.score(fake).mean()
        return l1 + self.cfg.w_adv * adv, {"rec": (fake - i_v).abs().mean().item(), "adv": adv.item()}

    def embed_loss(self, step: int):
        _, _, g_b, y_b = self._triplet()
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
        src = self.data.batch(index)
        tgt = self.data.batch(index.roll(1))
        out = self.model.gen(src.img, lmk_to_vector(tgt.lmk68, self.model.res))
        return [src.img, tgt.img, out]
