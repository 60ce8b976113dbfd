"""Every failure a user can cause is a DarknetError: one clear sentence, no deep traceback."""
from __future__ import annotations


class DarknetError(Exception):
    """Base class for errors caused by user input (files, options, images)."""


class CfgError(DarknetError):
    """A .cfg file is malformed or asks for something the engine cannot honour."""


class WeightsError(DarknetError):
    """A .weights (or converted) file does not fit its cfg or is unreadable."""


class InputError(DarknetError):
    """An image, video, path or option given by the user is unusable."""


class ImageFitError(InputError):
    """An option one image cannot take (a --roi beyond its size): a run over many images names the image."""


class DarknetWarning(UserWarning):
    """Something the engine works around and the user should know: a cfg quirk (shown once per place in
    a file), NaN weights, a compiler or runtime falling back."""
