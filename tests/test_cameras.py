"""The one OpenGL -> OpenCV camera conversion: dataset poses (numpy) and nerfstudio's cameras (torch) agree."""

from __future__ import annotations

import numpy as np
import torch

from splatpack.datasets.cameras import GL_TO_CV, camera_to_viewmats, gl_pose_to_viewmat


def _poses(n: int = 6) -> np.ndarray:
    """OpenGL camera-to-world matrices of cameras on a ring, looking at the origin."""
    out = []
    for a in np.linspace(0, 2 * np.pi, n, endpoint=False):
        centre = np.array([3 * np.cos(a), 3 * np.sin(a), 1.0])
        back = centre / np.linalg.norm(centre)  # OpenGL cameras look down -z
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        c2w = np.eye(4)
        c2w[:3, :3] = np.stack([right, np.cross(back, right), back], axis=1)
        c2w[:3, 3] = centre
        out.append(c2w)
    return np.stack(out)


def test_both_conversions_give_the_same_world_to_camera():
    poses = _poses()
    numpy_views = np.stack([gl_pose_to_viewmat(p) for p in poses])
    torch_views = camera_to_viewmats(torch.from_numpy(poses[:, :3]).float())
    torch.testing.assert_close(torch_views, torch.from_numpy(numpy_views).float(), atol=1e-6, rtol=0)
    # OpenCV cameras look down +z: the origin is in front of every camera, centred in the image.
    origin = numpy_views @ np.array([0.0, 0.0, 0.0, 1.0])
    assert np.all(origin[:, 2] > 0) and np.allclose(origin[:, :2], 0, atol=1e-9)
    np.testing.assert_array_equal(GL_TO_CV @ GL_TO_CV, np.eye(4))
