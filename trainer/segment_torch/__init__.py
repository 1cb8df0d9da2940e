"""The PyTorch side of the `segment` project (what the Swift engine is tested against): Swin-UNet, the AdvMIM networks, checkpoints, model-file tensors."""
from .model import SwinUNet, SwinUNetConfig, SwinTransformerSys, relative_position_index, shifted_window_mask
from .advmim import BlockMaskGenerator, Discriminator, MiMSwinUNet, MiMUNet, plain_state_dict
from .checkpoints import LAYOUTS, advmim_state_dict, read_key_list, save_checkpoint, state_layout
from .tensors import engine_tensors

__all__ = ["SwinUNet", "SwinUNetConfig", "SwinTransformerSys", "relative_position_index", "shifted_window_mask",
           "BlockMaskGenerator", "Discriminator", "MiMSwinUNet", "MiMUNet", "plain_state_dict",
           "LAYOUTS", "advmim_state_dict", "read_key_list", "save_checkpoint", "state_layout", "engine_tensors"]
