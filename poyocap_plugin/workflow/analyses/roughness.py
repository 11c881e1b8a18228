r"""How rough a loss surface is: two numbers of a surface sampled on a square grid.

POYO-CAP (Fig. 2) calls the predictable neurons' masked-reconstruction landscape smooth and
the unpredictable neurons' "138x rougher", without saying how roughness is measured. We
take, for a surface :math:`L_{ij}` on an :math:`n \times n` grid of equal steps:

* **Laplacian roughness** (the headline): the mean squared discrete Laplacian over the
  interior points, in grid steps, divided by the squared range of the surface,

  .. math::

      R = \frac{\operatorname{mean}_{ij}\,(L_{i+1,j} + L_{i-1,j} + L_{i,j+1} + L_{i,j-1}
          - 4 L_{ij})^2}{(\max L - \min L)^2}.

  It is zero for a plane, :math:`4 h^4` for the paraboloid :math:`x^2 + y^2` on a grid of
  step :math:`h` over :math:`[-1, 1]^2`, and grows with curvature that changes from one
  point to the next. Dividing by the range makes it independent of the loss's scale and
  offset, so two populations' surfaces compare even where their losses differ in size.
* **Local minima**: the interior points lower than all eight neighbours; 1 for a convex
  bowl, many for a rugged surface. A count, reported beside :math:`R` because it ignores
  how deep the dents are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["laplacian_roughness", "local_minima"]


def _check_surface(surface: np.ndarray) -> np.ndarray:
    surface = np.asarray(surface, dtype=np.float64)
    if surface.ndim != 2 or min(surface.shape) < 3:
        raise ValueError(
            f"a loss surface must be a 2-D grid of at least 3 x 3, got {surface.shape}"
        )
    if not np.isfinite(surface).all():
        raise ValueError(
            f"the loss surface holds {int((~np.isfinite(surface)).sum())} non-finite values"
        )
    return surface


def laplacian_roughness(surface: np.ndarray) -> float:
    """Mean squared discrete Laplacian of ``surface`` over its range squared (module doc).

    Args:
        surface: The loss on a grid of equal steps, :math:`(n, m)` with n, m >= 3.

    Returns:
        The roughness; 0 for a constant surface.

    Raises:
        ValueError: For a grid smaller than 3 x 3, not 2-D, or with non-finite values.
    """
    surface = _check_surface(surface)
    span = surface.max() - surface.min()
    if span == 0:
        return 0.0
    laplacian = (
        surface[2:, 1:-1]
        + surface[:-2, 1:-1]
        + surface[1:-1, 2:]
        + surface[1:-1, :-2]
        - 4.0 * surface[1:-1, 1:-1]
    )
    return float(np.mean(laplacian**2) / span**2)


def local_minima(surface: np.ndarray) -> int:
    """The interior points of ``surface`` strictly lower than all eight neighbours.

    Raises:
        ValueError: As :func:`laplacian_roughness`.
    """
    surface = _check_surface(surface)
    centre = surface[1:-1, 1:-1]
    rows, cols = surface.shape
    lower = np.ones_like(centre, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                lower &= centre < surface[1 + di : rows - 1 + di, 1 + dj : cols - 1 + dj]
    return int(lower.sum())
