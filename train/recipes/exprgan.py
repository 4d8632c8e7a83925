"""ExprGAN training (MODELS.md 4.4): three incremental stages, BCE GANs, InfoGAN-style Q.

x̂ = G_dec(G_enc(x), F_ctrl(y, z_y)), y = x's own (pseudo-)label, z_y ~ U(-1,1)^d (F_ctrl uses |z_y|).

Stages (fractions of the steps: ``stages``, default equal as in the authors' 50 epochs each [C]):

1. ``controller``: G_dec, Q and D_img. G_enc's output is replaced by g ~ U(-1,1)^50.
   D: BCE(D(x,y), 1) + BCE(D(G_dec(g,c), y), 0) + L_Q (Q and D share the trunk; the authors' code
   puts L_Q in the D_img loss [C]). G: w_adv_ctrl·BCE(D(x̂,y), 1) + L_Q (weight of the adversarial
   term in this stage is not given: 1 [D], it is the only image loss of the stage).
2. ``reconstruction``: G_enc + G_dec with L_pixel + L_id + 0.1·L_Q [D] (D_img/Q/D_z frozen: no phase of
   theirs runs; Q and the D_img trunk are only read).
3. ``refinement``: everything. D: as stage 1 but fake = x̂; Dz: BCE(D_z(U(-1,1)^50), 1) + BCE(D_z(g(x)), 0);
   G: L_pixel + L_id + L_Q + 0.01·L_adv^img + 0.01·L_adv^z + 0.001·L_tv [P].

Terms as the authors' code [C]: L_pixel = mean |x̂ - x|; L_Q = Σ over class blocks of the block's MSE
between Q(x̂, y) and the code; L_tv = [Σ(∂_y x̂)²/2 / H + Σ(∂_x x̂)²/2 / W] / B. L_id goes through the
project's ``FeatureLoss``: VGG19 when a file was given, else L1 feature matching on the D_img trunk's
activations (the four conv blocks and the FC layer, conditioned on y). Adam 2e-4, (0.5, 0.999), batch
48, no lr decay [P, C]. Watched statistic ``rec`` = mean |x̂ - x|, reported by the G phase of stages
2 and 3 (the stages that reconstruct; stage 1 has no encoder).

Warp-guided (model option ``warp_guided``): every phase draws warp pairs (``train/warp_pairs.py``).
The input is frame u (colour-jittered), the generator also reads u moved by the mesh warp to v's mesh
and the warp's hole mask, and the condition is frame v's: y = v's class and the code is v's own
(``ExprGAN.code`` of v's label and the intensity of its blendshapes, as the runtime's
``condition_from_frame``), not a random intensity, since v is the truth the output must match. Real
images for D_img (and the identity features) are v in u's crop. The stages keep their losses with v
in place of x; stage 1 decodes the warp with g ~ U(-1,1)^50 in place of G_enc(u). Every G phase adds
the attention regularisers (``w_att`` sparsity outside the hole, ``w_tv_att`` smoothness; per element,
in the units of L_pixel: ``w_tv`` is the paper's image TV weight here, so the attention's TV weight
has its own name). The watched ``rec`` is mean |output - v|.

The colour term [D] (``w_colour``, per element in L_pixel's units): an L1 of the generated colour
C = warped + 2 * delta (what the attention switches to) to v. At initialisation the colour is worse
than the warp everywhere; the output L1 then drives the attention to "all warp" within ~50 steps,
and from there the colour only receives (1 - A) * sign(warped - truth), too weak to make it a
reconstruction of v that the attention can switch to where the warp is wrong. Supervising C
directly does: on 8 real frames with a mouth box to paint (tests/test_warp_guided_lmklabel_exprgan.py)
the output's L1 falls 0.089 -> 0.035 in 300 steps.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reenact.models.exprgan import ExprGAN
from reenact.models.nets.exprgan import f_ctrl

from ..recipe import Phase, Recipe, RecipeConfig, Stage, TrainingPlan, register_recipe


@dataclass
class ExprGANRecipeConfig(RecipeConfig):
    batch: int = 48
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    stages: tuple[float, float, float] = (1.0, 1.0, 1.0)   # step shares of controller, reconstruction, refinement
    w_pixel: float = 1.0
    w_id: float = 1.0
    w_q: float = 1.0             # L_Q of the generator in stages 1 and 3
    w_q_d: float = 1.0           # L_Q in the D_img/Q loss (the authors' code: 1)
    w_q_rec: float = 0.1         # L_Q in the reconstruction stage [D]
    w_adv_ctrl: float = 1.0      # adversarial weight of the controller stage [D]
    w_adv: float = 0.01          # L_adv^img in the refinement stage
    w_adv_z: float = 0.01        # L_adv^z in the refinement stage
    w_tv: float = 0.001
    w_att: float = 0.3           # warp-guided: share of generated pixels outside the hole (x w_pixel, per element)
    w_tv_att: float = 0.1        # warp-guided: total variation of the attention mask (x w_pixel, per element)
    w_colour: float = 1.0        # warp-guided: L1 of the generated colour itself to the truth (x w_pixel)


@contextmanager
def _bn_eval(module: torch.nn.Module):
    """``module`` in eval mode (BN on its running statistics) for the duration, then back."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """The authors' TV term [C]: [Σ(∂_y)²/2 / H + Σ(∂_x)²/2 / W] / B."""
    b, _, h, w = img.shape
    dy = (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum() / 2 / h
    dx = (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum() / 2 / w
    return (dy + dx) / b


@register_recipe
class ExprGANRecipe(Recipe):
    model_id = "exprgan"
    Config = ExprGANRecipeConfig
    needs_pairs = False
    att_tv_option = "w_tv_att"  # w_tv is the paper's image TV weight
    tiny = ({"width": 0.125, "d": 1},
            {"batch": 4, "lr": 1e-3, "w_id": 0.1, "w_q": 0.01, "stages": (0.05, 0.8, 0.15)}, 260)

    model: ExprGAN

    def __init__(self, model, cfg, data, features):
        super().__init__(model, cfg, data, features)
        if len(cfg.stages) != 3 or min(cfg.stages) < 0 or sum(cfg.stages) <= 0:
            raise ValueError(f"stages must be three non-negative step shares, got {cfg.stages}")
        # intensity normaliser of condition_from_frame (MODELS.md 4.7 (ii)) from this training data
        model.fit_intensity_scale(data.blend, data.label)

    def plan(self) -> TrainingPlan:
        m, c = self.model, self.cfg
        opts = {"D": self.adam(m.disc), "Dz": self.adam(m.dz), "G": self.adam(m.gen)}
        f1, f2, f3 = c.stages
        stages = [
            Stage("controller", f1, [Phase("D", "D", self.d_ctrl_loss, c.n_critic),
                                     Phase("G", "G", self.g_ctrl_loss)]),
            Stage("reconstruction", f2, [Phase("G", "G", self.g_rec_loss)]),
            Stage("refinement", f3, [Phase("D", "D", self.d_refine_loss, c.n_critic),
                                     Phase("Dz", "Dz", self.dz_loss, c.n_critic),
                                     Phase("G", "G", self.g_refine_loss)]),
        ]
        return TrainingPlan(opts, [s for s in stages if s.fraction > 0], watch="rec")

    # -- batches ----------------------------------------------------------------------------
    def _batch(self):
        """(input, real, y, code, warp batch or None). Paper mode: real images x (also the input), their
        one-hots and a random code of their own class. Warp-guided: frame u (input), frame v in u's crop
        (real: the truth), v's one-hot and v's own code (class and intensity), and the warp batch."""
        m, n, g = self.model, self.cfg.batch, self.rng
        if self.warp_guided:
            wb = self.warp_batch()
            y = m.class_onehot(wb.label).to(wb.truth)
            code = m.code(wb.label, m.intensity(wb.blend, wb.label)).to(wb.truth)
            return wb.target, wb.truth, y, code, wb
        if m.has_neutral:
            idx = self.data.frames(n, g)
        else:  # the paper's six classes: labelled (non-neutral) frames only
            idx = self.data.where(self.data.label > 0, n, g, "expression-labelled (non-neutral)")
        b = self.data.batch(idx)
        y = m.class_onehot(b.label).to(b.img)
        z = torch.rand(n, m.d, generator=g).to(b.img) * 2 - 1
        return b.img, b.img, y, f_ctrl(y, z, m.d), None

    def _noise_g(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return (torch.rand(n, self.model.gen.z_dim, generator=self.rng) * 2 - 1).to(like)

    def _decode(self, g: torch.Tensor, code: torch.Tensor, wb):
        """(G_dec(g, code), None) or, warp-guided, (output, (attention, generated colour)) with the
        pair's warp inputs."""
        if wb is None:
            return self.model.gen.dec(g, code), None
        out, a, colour = self.model.gen.decode(g, code, wb.warped, wb.hole, with_colour=True)
        return out, (a, colour)

    # -- loss terms -------------------------------------------------------------------------
    def per_element(self, out: torch.Tensor) -> float:
        return self.cfg.w_pixel  # L_pixel is a mean weighted w_pixel: the attention terms in its units

    def _with_attention(self, loss: torch.Tensor, stats: dict[str, float], fake: torch.Tensor, parts, wb):
        """Warp-guided: ``loss`` plus the attention regularisers and the colour term, and their stats."""
        if wb is None:
            return loss, stats
        att, colour = parts
        penalty, att_stats = self.attention_penalty(fake, att, wb)
        col = (colour - wb.truth).abs().mean()
        loss = loss + penalty + self.cfg.w_colour * self.per_element(fake) * col
        return loss, {**stats, **att_stats, "colour_rec": col.item()}

    def _q_loss(self, q: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Σ over the K class blocks of the block's mean squared error [C]."""
        k, d = self.model.k, self.model.d
        return (q - code).pow(2).view(-1, k, d).mean(dim=(0, 2)).sum()

    def _id_loss(self, fake: torch.Tensor, real: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        trunk = self.model.disc.trunk

        def feats(im: torch.Tensor) -> list[torch.Tensor]:
            with _bn_eval(trunk):
                return trunk.features(im, y)

        return self.features.loss(fake, real, disc_features=feats)

    def _d_loss(self, real, fake, y, code):
        d = self.model.disc
        logit_real, _ = d(real, y)
        logit_fake, q = d(fake.detach(), y)
        l_real, l_fake, l_q = _bce(logit_real, 1.0), _bce(logit_fake, 0.0), self._q_loss(q, code)
        acc = 0.5 * ((logit_real > 0).float().mean() + (logit_fake < 0).float().mean())
        return l_real + l_fake + self.cfg.w_q_d * l_q, {"d_real": l_real.item(), "d_fake": l_fake.item(),
                                                       "q": l_q.item(), "d_acc": acc.item()}

    # -- stage 1: controller ------------------------------------------------------------------
    def d_ctrl_loss(self, step: int):
        _, real, y, code, wb = self._batch()
        with torch.no_grad():
            fake, _ = self._decode(self._noise_g(real.shape[0], real), code, wb)
        return self._d_loss(real, fake, y, code)

    def g_ctrl_loss(self, step: int):
        _, real, y, code, wb = self._batch()
        fake, att = self._decode(self._noise_g(real.shape[0], real), code, wb)
        logit, q = self.model.disc(fake, y)
        adv, l_q = _bce(logit, 1.0), self._q_loss(q, code)
        return self._with_attention(self.cfg.w_adv_ctrl * adv + self.cfg.w_q * l_q,
                                    {"adv": adv.item(), "q": l_q.item()}, fake, att, wb)

    # -- stage 2: reconstruction --------------------------------------------------------------
    def g_rec_loss(self, step: int):
        c = self.cfg
        inp, real, y, code, wb = self._batch()
        fake, att = self._decode(self.model.gen.enc(inp), code, wb)
        pix = (fake - real).abs().mean()
        l_id = self._id_loss(fake, real, y)
        with _bn_eval(self.model.disc):  # Q is frozen in this stage: read it as the network it was trained to be
            l_q = self._q_loss(self.model.disc.q(fake, y), code)
        loss = c.w_pixel * pix + c.w_id * l_id + c.w_q_rec * l_q
        return self._with_attention(loss, {"rec": pix.item(), "id": l_id.item(), "q": l_q.item()}, fake, att, wb)

    # -- stage 3: refinement ------------------------------------------------------------------
    def d_refine_loss(self, step: int):
        inp, real, y, code, wb = self._batch()
        with torch.no_grad():
            fake, _ = self._decode(self.model.gen.enc(inp), code, wb)
        return self._d_loss(real, fake, y, code)

    def dz_loss(self, step: int):
        inp, real, _, _, _ = self._batch()
        with torch.no_grad():
            g = self.model.gen.enc(inp)
        logit_prior, logit_g = self.model.dz(self._noise_g(real.shape[0], real)), self.model.dz(g)
        l_prior, l_g = _bce(logit_prior, 1.0), _bce(logit_g, 0.0)
        acc = 0.5 * ((logit_prior > 0).float().mean() + (logit_g < 0).float().mean())
        return l_prior + l_g, {"dz_prior": l_prior.item(), "dz_g": l_g.item(), "dz_acc": acc.item()}

    def g_refine_loss(self, step: int):
        c, m = self.cfg, self.model
        inp, real, y, code, wb = self._batch()
        g = m.gen.enc(inp)
        fake, att = self._decode(g, code, wb)
        logit, q = m.disc(fake, y)
        pix = (fake - real).abs().mean()
        l_id = self._id_loss(fake, real, y)
        l_q = self._q_loss(q, code)
        adv, adv_z, tv = _bce(logit, 1.0), _bce(m.dz(g), 1.0), tv_loss(fake)
        loss = (c.w_pixel * pix + c.w_id * l_id + c.w_q * l_q + c.w_adv * adv + c.w_adv_z * adv_z
                + c.w_tv * tv)
        return self._with_attention(loss, {"rec": pix.item(), "id": l_id.item(), "q": l_q.item(), "adv": adv.item(),
                                           "adv_z": adv_z.item(), "tv": tv.item()}, fake, att, wb)

    # -- samples ------------------------------------------------------------------------------
    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows: input, reconstruction (its own condition_from_frame code), and the same identity with the
        two next classes (cyclically) at full intensity. Warp-guided: photo u, u warped to v, v (truth, in
        u's crop), output for v's code, attention (white = warp)."""
        m = self.model
        if self.warp_guided:
            from ..warp_pairs import WarpPairs

            pairs = WarpPairs(self.data, self.data.ds)
            wb = pairs.batch(index, pairs.partners(index, offset=7))
            code = m.code(wb.label, m.intensity(wb.blend, wb.label)).to(wb.truth)
            out, att = m.gen(wb.target, code, wb.warped, wb.hole, with_attention=True)
            return [wb.target, wb.warped, wb.truth, out, (att * 2 - 1).expand(-1, 3, -1, -1)]
        tgt = self.data.target_input(index)
        state = m.encode_target(tgt)
        z_id = state.z_id
        rows = [tgt.crop, m.drive(state, m.condition_from_frame(tgt))]
        first = 0 if m.has_neutral else 1  # EXPRESSION_CLASSES index of the first block
        for shift in (1, 2):
            lab = (tgt.label.long() - first + shift) % m.k + first
            code = m.code(lab, torch.ones(len(lab))).to(z_id)
            rows.append(m.gen.dec(z_id, code))
        return rows
