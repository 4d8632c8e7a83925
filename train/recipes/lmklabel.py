"""lmklabel training (MODELS.md 2.4): two PatchGANs, pixel L1 and a perceptual term.

Pairs are two frames of one person: source -> target, driven by the target's landmarks (H_tgt)
and its pseudo-label (+-1 one-hot) [P/G]; the source heatmaps H_src are the source's own points.

* D_img sees [source ‖ real-or-fake target], D_geo sees [real-or-fake target ‖ H_tgt] [D].
  L_GAN is BCE-with-logits summed over both (the discriminators output logits, see
  ``reenact.models.nets.lmklabel``); the generator uses the non-saturating form [D].
* L_pixel = mean |fake - target| [P eq. 5]; L_per goes through ``self.features``: VGG19 conv1_2
  when a weights file was given, otherwise L1 between D_img's intermediate feature maps of
  [source ‖ fake] and [source ‖ real] (discriminator feature matching).
* G objective 5 L_GAN + 10 L_per + 10 L_pixel [P]; Adam lr 2e-4, betas (0.5, 0.999), batch 16;
  lr constant for the first half, then linear decay to 0 [D] (the paper's 200 epochs with decay over
  the last 100, expressed as a fraction of the run's steps).
* One generator forward per step, as pix2pix: the D phase draws the pair and generates the fake
  (keeping its graph); the G phase of the same step reuses both (the G weights are unchanged by the
  D step), so D and G see the same batch within a step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reenact.models.lmklabel import label_planes_vector

from ..recipe import Phase, Recipe, RecipeConfig, Stage, TrainingPlan, register_recipe


@dataclass
class LmkLabelRecipeConfig(RecipeConfig):
    batch: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    w_gan: float = 5.0
    w_per: float = 10.0
    w_pix: float = 10.0
    decay_start: float = 0.5     # fraction of the run after which the lr decays linearly to 0


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


def patch_features(d: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Intermediate feature maps of a PatchGAN's ``net`` (after each LeakyReLU block, logits excluded)."""
    out = []
    layers = list(d.net)
    for layer in layers[:-1]:
        x = layer(x)
        out.append(x)
    return out


@register_recipe
class LmkLabelRecipe(Recipe):
    model_id = "lmklabel"
    Config = LmkLabelRecipeConfig
    needs_pairs = True
    # CPU cost is dominated by the 136-channel 7x7 geometry conv at 128^2 (its 8 output channels are
    # the floor of ``ch``), so the tiny run keeps the batch small: ~0.4 CPU-s per step, 100 steps.
    tiny = ({"width": 0.125, "n_blocks": 2}, {"batch": 2, "lr": 1e-3}, 100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shared = None  # (step, pair, fake with its graph) from this step's D phase

    def plan(self) -> TrainingPlan:
        m, c = self.model, self.cfg
        opts = {"D": self.adam(m.d_img, m.d_geo), "G": self.adam(m.gen)}

        def decay(step: int, total: int) -> float:
            start = int(total * c.decay_start)
            if step < start or total <= start:
                return 1.0
            return max(0.0, (total - step) / (total - start))

        stage = Stage("joint", 1.0, [Phase("D", "D", self.d_loss, c.n_critic), Phase("G", "G", self.g_loss)])
        return TrainingPlan(opts, [stage], {k: decay for k in opts}, watch="rec")

    # -- batches ----------------------------------------------------------------------------
    def _pairs(self):
        """(source image, target image, H_src, H_tgt, target label +-1) for a batch of same-person pairs."""
        a, b = self.data.pairs(self.cfg.batch, self.rng)
        src, tgt = self.data.batch(a), self.data.batch(b)
        gen = self.model.gen
        return (src.img, tgt.img, gen.heatmap(src.lmk68), gen.heatmap(tgt.lmk68),
                label_planes_vector(tgt.label, self.model.cfg.n_classes))

    # -- losses -----------------------------------------------------------------------------
    def d_loss(self, step: int):
        src, tgt, h_src, h_tgt, label = pair = self._pairs()
        m = self.model
        # One generator forward per step (as pix2pix): the fake keeps its graph and the G phase of
        # the same step reuses it with the same pair; the G weights do not change in between.
        fake = m.gen.forward_heatmaps(src, h_src, h_tgt, label)
        self._shared = (step, pair, fake)
        fake = fake.detach()
        img_real, img_fake = m.d_img(src, tgt), m.d_img(src, fake)
        geo_real, geo_fake = m.d_geo(tgt, h_tgt), m.d_geo(fake, h_tgt)
        l_img = _bce(img_real, True) + _bce(img_fake, False)
        l_geo = _bce(geo_real, True) + _bce(geo_fake, False)
        return l_img + l_geo, {"d_img": l_img.item(), "d_geo": l_geo.item()}

    def g_loss(self, step: int):
        m, c = self.model, self.cfg
        shared, self._shared = self._shared, None
        if shared is not None and shared[0] == step and shared[2].requires_grad:
            _, (src, tgt, h_src, h_tgt, label), fake = shared
        else:
            src, tgt, h_src, h_tgt, label = self._pairs()
            fake = m.gen.forward_heatmaps(src, h_src, h_tgt, label)
        gan = _bce(m.d_img(src, fake), True) + _bce(m.d_geo(fake, h_tgt), True)
        pix = (fake - tgt).abs().mean()
        per = self.features.loss(fake, tgt, disc_features=lambda x: patch_features(m.d_img, torch.cat([src, x], 1)))
        loss = c.w_gan * gan + c.w_per * per + c.w_pix * pix
        return loss, {"rec": pix.item(), "gan": gan.item(), "per": per.item()}

    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows: source, target (the next frame), output for the target's landmarks and label."""
        src = self.data.batch(index)
        tgt = self.data.batch(index.roll(1))
        out = self.model.gen(src.img, src.lmk68, tgt.lmk68, label_planes_vector(tgt.label, self.model.cfg.n_classes))
        return [src.img, tgt.img, out]
