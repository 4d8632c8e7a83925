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

Warp-guided (model option ``warp_guided``): the pairs are warp pairs (``train/warp_pairs.py``): the
source is frame u (its crop, colour-jittered, and its own landmarks as H_src), the condition is frame
v's landmarks in u's crop (H_tgt) and v's label, the generator also reads u moved by the mesh warp
to v's mesh and the warp's hole mask, and the truth is frame v in u's crop. D_img sees
[u ‖ real-or-fake v], D_geo [real-or-fake v ‖ H_tgt]; the G objective adds the attention
regularisers (``w_att`` sparsity outside the hole, ``w_tv`` smoothness) in the units of the pixel
loss: one per-element mean weighs ``w_pix`` here (``per_element``), as the L1 it trades against.
The watched ``rec`` is mean |output - truth|. ``w_colour`` [D] adds an L1 of the generated colour
C = warped + 2 * delta (what the attention switches to) to the truth, in the same units: once the
output is mostly the warp, the output L1 gives the colour only (1 - A) * sign(warped - truth), too
weak for it to become good enough for the attention to switch to it where the warp is wrong. On 8
real frames with a mouth box to paint (tests/test_warp_guided_lmklabel_exprgan.py) the output's L1
falls 0.080 -> 0.036 in 150 steps.
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
    w_att: float = 0.3           # warp-guided: share of generated pixels outside the hole (x w_pix, per element)
    w_tv: float = 0.1            # warp-guided: total variation of the attention mask (x w_pix, per element)
    w_colour: float = 1.0        # warp-guided: L1 of the generated colour itself to the truth (x w_pix)


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
    def _draw(self):
        """(source image, truth image, H_src, H_tgt, target label +-1, warp batch or None) for a batch of
        same-person pairs; warp-guided: warp pairs (source u, truth v in u's crop, H_tgt from v's points
        in u's crop, v's label)."""
        gen, k = self.model.gen, self.model.cfg.n_classes
        if self.warp_guided:
            wb = self.warp_batch()
            lmk_src = self.data.batch(wb.a).lmk68  # u's own points in its crop (as the paper mode's source)
            return (wb.target, wb.truth, gen.heatmap(lmk_src), gen.heatmap(wb.lmk68),
                    label_planes_vector(wb.label, k), wb)
        a, b = self.data.pairs(self.cfg.batch, self.rng)
        src, tgt = self.data.batch(a), self.data.batch(b)
        return src.img, tgt.img, gen.heatmap(src.lmk68), gen.heatmap(tgt.lmk68), label_planes_vector(tgt.label, k), None

    def _generate(self, pair):
        """(fake, None) of a pair from ``_draw``, or, warp-guided, (output, (attention, generated colour))."""
        src, _, h_src, h_tgt, label, wb = pair
        gen = self.model.gen
        if wb is None:
            return gen.forward_heatmaps(src, h_src, h_tgt, label), None
        out, a, colour = gen.forward_heatmaps(src, h_src, h_tgt, label, wb.warped, wb.hole, with_colour=True)
        return out, (a, colour)

    def per_element(self, out: torch.Tensor) -> float:
        return self.cfg.w_pix  # the pixel L1 is a mean weighted w_pix: the attention terms in its units

    # -- losses -----------------------------------------------------------------------------
    def d_loss(self, step: int):
        pair = self._draw()
        src, tgt, _, h_tgt, _, _ = pair
        m = self.model
        # One generator forward per step (as pix2pix): the fake keeps its graph and the G phase of
        # the same step reuses it with the same pair; the G weights do not change in between.
        fake, att = self._generate(pair)
        self._shared = (step, pair, fake, att)
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
            _, pair, fake, att = shared
        else:
            pair = self._draw()
            fake, att = self._generate(pair)
        src, tgt, _, h_tgt, _, wb = pair
        gan = _bce(m.d_img(src, fake), True) + _bce(m.d_geo(fake, h_tgt), True)
        pix = (fake - tgt).abs().mean()
        per = self.features.loss(fake, tgt, disc_features=lambda x: patch_features(m.d_img, torch.cat([src, x], 1)))
        loss = c.w_gan * gan + c.w_per * per + c.w_pix * pix
        stats = {"rec": pix.item(), "gan": gan.item(), "per": per.item()}
        if wb is not None:
            a, colour = att
            penalty, att_stats = self.attention_penalty(fake, a, wb)
            col = (colour - tgt).abs().mean()
            loss = loss + penalty + c.w_colour * self.per_element(fake) * col
            stats.update(att_stats, colour_rec=col.item())
        return loss, stats

    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows: source, target (the next frame), output for the target's landmarks and label.
        Warp-guided: photo u, u warped to v, v (truth, in u's crop), output, attention (white = warp)."""
        k = self.model.cfg.n_classes
        if self.warp_guided:
            from ..warp_pairs import WarpPairs

            pairs = WarpPairs(self.data, self.data.ds)
            wb = pairs.batch(index, pairs.partners(index, offset=7))
            out, att = self.model.gen(wb.target, self.data.batch(wb.a).lmk68, wb.lmk68, label_planes_vector(wb.label, k),
                                      wb.warped, wb.hole, with_attention=True)
            return [wb.target, wb.warped, wb.truth, out, (att * 2 - 1).expand(-1, 3, -1, -1)]
        src = self.data.batch(index)
        tgt = self.data.batch(index.roll(1))
        out = self.model.gen(src.img, src.lmk68, tgt.lmk68, label_planes_vector(tgt.label, k))
        return [src.img, tgt.img, out]
