"""Network definitions (torch ``nn.Module``) for the five reenactment models; see MODELS.md."""
