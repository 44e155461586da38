"""The demo scene generator and the dataset loaders (transforms.json, COLMAP), checked against nerfstudio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from plyfile import PlyData

from splatpack.datasets import colmap as cm
from splatpack.datasets import generate_demo_scene, load_colmap, load_seed_points, load_transforms
from splatpack.errors import SplatpackError

SMALL = dict(n_views=12, test_every=4, extra_test_views=0, width=64, height=48)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return generate_demo_scene(tmp_path_factory.mktemp("demo") / "scene", **SMALL)


def _model(scene: Path) -> Path:
    return scene / "colmap" / "sparse" / "0"


def test_layout_and_cache(scene, tmp_path):
    names = [f"frame_{i:05d}.png" for i in range(12)]
    assert sorted(p.name for p in (scene / "images").iterdir()) == names
    assert cv2.imread(str(scene / "images" / names[0])).shape == (48, 64, 3)
    assert sorted(p.name for p in _model(scene).iterdir()) == ["cameras.bin", "images.bin", "points3D.bin"]
    meta = json.loads((scene / "transforms.json").read_text())
    assert meta["camera_model"] == "OPENCV" and (meta["w"], meta["h"]) == (64, 48)
    assert all(meta[k] == 0.0 for k in ("k1", "k2", "p1", "p2"))
    assert meta["test_filenames"] == meta["val_filenames"] == [f"images/{names[i]}" for i in (0, 4, 8)]
    assert len(meta["train_filenames"]) == 9 and meta["ply_file_path"] == "sparse_pc.ply"
    vertex = PlyData.read(str(scene / "sparse_pc.ply"))["vertex"]
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "red", "green", "blue"]
    assert vertex["red"].dtype == np.uint8 and 2000 <= len(vertex) <= 5000

    # Same parameters: cached, nothing rewritten. Different parameters: regenerated.
    copy = tmp_path / "scene"
    shutil.copytree(scene, copy)
    stamp = (copy / "images" / names[0]).stat().st_mtime_ns
    generate_demo_scene(copy, **SMALL)
    assert (copy / "images" / names[0]).stat().st_mtime_ns == stamp
    generate_demo_scene(copy, **{**SMALL, "n_views": 8, "height": 40})
    assert len(list((copy / "images").iterdir())) == 8
    assert cv2.imread(str(copy / "images" / names[0])).shape == (40, 64, 3)
    assert json.loads((copy / "scene.json").read_text())["n_views"] == 8
    stamp = (copy / "scene.json").stat().st_mtime_ns
    generate_demo_scene(copy, **{**SMALL, "n_views": 8, "height": 40}, overwrite=True)
    assert (copy / "scene.json").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]  # no temporary folders left behind

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SplatpackError, match="not a splatpack demo scene"):
        generate_demo_scene(foreign, **SMALL)


def test_deterministic_under_seed(scene, tmp_path):
    again = generate_demo_scene(tmp_path / "again", **SMALL)
    files = [p.relative_to(scene) for p in scene.rglob("*") if p.is_file()]
    assert len(files) == 12 + 3 + 6  # images, COLMAP model, transforms/ply/scene.json/3 split lists
    for rel in files:
        assert (again / rel).read_bytes() == (scene / rel).read_bytes(), rel
    other = generate_demo_scene(tmp_path / "other", **SMALL, seed=1)
    assert (other / "sparse_pc.ply").read_bytes() != (scene / "sparse_pc.ply").read_bytes()
    assert (other / "images/frame_00000.png").read_bytes() != (scene / "images/frame_00000.png").read_bytes()


def test_transforms_and_colmap_describe_the_same_cameras(scene):
    a = load_transforms(scene, split="all")
    b = load_colmap(scene, split="all")
    assert [Path(n).name for n in a.names] == b.names
    assert a.images.shape == b.images.shape == (12, 48, 64, 3)
    torch.testing.assert_close(a.viewmats, b.viewmats, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.Ks, b.Ks, atol=1e-5, rtol=0)
    assert torch.equal(a.images, b.images)
    # Proper rotations, cameras right side up: the world's up (+z) projects upwards (negative y) in each image.
    rot = a.viewmats[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64).expand(12, 3, 3)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye, atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(12, dtype=torch.float64), atol=1e-5)
    assert (rot[:, 1, 2] < -0.5).all()


def test_nerfstudio_reads_our_colmap_model(scene):
    from nerfstudio.data.utils import colmap_parsing_utils as ns

    model = _model(scene)
    cams, ours_cams = ns.read_cameras_binary(model / "cameras.bin"), cm.read_cameras_binary(model / "cameras.bin")
    assert cams[1].model == ours_cams[1].model == "PINHOLE"
    assert np.array_equal(cams[1].params, ours_cams[1].params) and (cams[1].width, cams[1].height) == (64, 48)
    images, ours_images = ns.read_images_binary(model / "images.bin"), cm.read_images_binary(model / "images.bin")
    assert sorted(images) == sorted(ours_images) == list(range(1, 13))
    meta = json.loads((scene / "transforms.json").read_text())
    for frame in meta["frames"]:
        im, mine = images[frame["colmap_im_id"]], ours_images[frame["colmap_im_id"]]
        assert im.name == mine.name == Path(frame["file_path"]).name
        assert np.array_equal(im.xys, mine.xys) and np.array_equal(im.point3D_ids, mine.point3d_ids)
        # nerfstudio's own quaternion code on COLMAP's pose gives back transforms.json's OpenGL camera-to-world.
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = ns.qvec2rotmat(im.qvec), im.tvec
        c2w_gl = np.linalg.inv(w2c) @ np.diag([1.0, -1.0, -1.0, 1.0])
        np.testing.assert_allclose(c2w_gl, frame["transform_matrix"], atol=1e-9)
    points, ours = ns.read_points3D_binary(model / "points3D.bin"), cm.read_points3d_binary(model / "points3D.bin")
    ids = sorted(points)
    assert ids == ours.ids.tolist()
    np.testing.assert_array_equal(np.array([points[i].xyz for i in ids]), ours.xyz)
    np.testing.assert_array_equal(np.array([points[i].rgb for i in ids]), ours.rgb)
    tracks = np.concatenate([np.stack([points[i].image_ids, points[i].point2D_idxs], 1) for i in ids])
    np.testing.assert_array_equal(tracks, ours.tracks)
    # Tracks and keypoints cross-reference each other.
    for pid, (iid, k) in zip(np.repeat(ids, np.diff(ours.track_offsets)), tracks):
        assert images[iid].point3D_ids[k] == pid
    assert all(len(points[i].image_ids) >= 2 for i in ids)


def test_colmap_writer_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    quats = rng.normal(size=(50, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    quats[quats[:, 0] < 0] *= -1
    np.testing.assert_allclose(cm.rotmat_to_qvec(cm.qvec_to_rotmat(quats)), quats, atol=1e-12)
    lengths = rng.integers(0, 5, 30)
    pts = cm.ColmapPoints(
        ids=np.arange(7, 37, dtype=np.uint64),
        xyz=rng.normal(size=(30, 3)),
        rgb=rng.integers(0, 256, (30, 3), dtype=np.uint8),
        error=rng.random(30),
        track_offsets=np.concatenate([[0], np.cumsum(lengths)]),
        tracks=rng.integers(0, 1000, (lengths.sum(), 2)).astype(np.int32),
    )
    cm.write_points3d_binary(pts, tmp_path / "points3D.bin")
    back = cm.read_points3d_binary(tmp_path / "points3D.bin")
    for field in ("ids", "xyz", "rgb", "error", "track_offsets", "tracks"):
        np.testing.assert_array_equal(getattr(back, field), getattr(pts, field))
    cam = cm.ColmapCamera(4, "OPENCV", 640, 480, np.array([500, 510, 320, 240, 0.1, -0.02, 0.001, 0.002]))
    cm.write_cameras_binary([cam], tmp_path / "cameras.bin")
    back_cam = cm.read_cameras_binary(tmp_path / "cameras.bin")[4]
    assert (back_cam.model, back_cam.width, back_cam.height) == ("OPENCV", 640, 480)
    np.testing.assert_array_equal(back_cam.params, cam.params)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "points3D.bin").read_bytes()[:-5])
    with pytest.raises(SplatpackError, match="cut.bin: truncated"):
        cm.read_points3d_binary(tmp_path / "cut.bin")


def _pixel_colours(images: torch.Tensor, view: np.ndarray, xy: np.ndarray) -> np.ndarray:
    cols = np.clip(np.floor(xy).astype(int), 0, [images.shape[2] - 1, images.shape[1] - 1])
    return images.numpy()[view, cols[:, 1], cols[:, 0]]


def test_seed_points_project_onto_their_colours(scene):
    """The poses really match the renders: every seed point lands, in each view of its track, inside the image,
    on its recorded keypoint and on a pixel of its colour."""
    cams = load_colmap(scene, split="all")
    points = cm.read_points3d_binary(_model(scene) / "points3D.bin")
    images = cm.read_images_binary(_model(scene) / "images.bin")
    xyz, rgb = load_seed_points(scene)
    np.testing.assert_allclose(xyz.numpy(), points.xyz, atol=1e-5)  # PLY and COLMAP hold the same cloud
    np.testing.assert_allclose(rgb.numpy() * 255, points.rgb, atol=1e-3)

    pid = np.repeat(np.arange(len(points.ids)), np.diff(points.track_offsets))
    view = points.tracks[:, 0] - 1  # image ids are views + 1, and names sort in view order
    assert [images[i + 1].name for i in range(12)] == cams.names
    cam = np.einsum("tij,tj->ti", cams.viewmats.double().numpy()[view], np.c_[points.xyz[pid], np.ones(len(pid))])
    assert (cam[:, 2] > 0).all()
    xy = np.einsum("tij,tj->ti", cams.Ks.double().numpy()[view], cam[:, :3] / cam[:, 2:3])[:, :2]
    assert ((xy >= 0) & (xy < [64, 48])).all()
    keypoints = np.stack([images[i + 1].xys[k] for i, k in zip(view, points.tracks[:, 1])])
    assert np.linalg.norm(xy - keypoints, axis=1).max() < 0.5

    err = np.abs(_pixel_colours(cams.images, view, xy) - points.rgb[pid] / 255.0).max(axis=1)
    # At 64x48 a pixel spans several centimetres of stripes, grooves and checker edges, so only most points
    # land on a pixel of their own colour; the 160x120 default scene is tighter.
    assert np.median(err) < 0.06 and (err < 0.1).mean() > 0.6, (np.median(err), (err < 0.1).mean())
    # Control: the same check against the neighbouring views' images fails clearly.
    wrong = np.abs(_pixel_colours(cams.images, (view + 1) % 12, xy) - points.rgb[pid] / 255.0).max(axis=1)
    assert np.median(wrong) > 3 * np.median(err)


def test_splits_and_downscale(scene, tmp_path):
    for load in (load_transforms, load_colmap):
        train, test = load(scene, split="train"), load(scene, split="test")
        assert len(train.names) == 9 and [Path(n).name for n in test.names] == [f"frame_{i:05d}.png" for i in (0, 4, 8)]
    # Without explicit split keys every test_every-th frame is held out.
    meta = json.loads((scene / "transforms.json").read_text())
    for key in ("train_filenames", "val_filenames", "test_filenames"):
        del meta[key]
    (tmp_path / "images").symlink_to(scene / "images")
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    assert len(load_transforms(tmp_path, split="test", test_every=3).names) == 4
    assert len(load_transforms(tmp_path, split="train", test_every=3).names) == 8

    full, half = load_transforms(scene, split="test"), load_transforms(scene, split="test", downscale=2)
    assert (half.width, half.height) == (32, 24) and half.images.shape == (3, 24, 32, 3)
    torch.testing.assert_close(half.Ks[:, :2], full.Ks[:, :2] / 2)
    photo = cv2.imread(str(scene / "images/frame_00000.png"))[:, :, ::-1]
    expected = cv2.resize(photo, (32, 24), interpolation=cv2.INTER_AREA) / 255.0
    np.testing.assert_allclose(half.images[0].numpy(), expected, atol=1e-6)


def test_distortion_is_removed(scene, tmp_path):
    """A frame distorted with known OPENCV coefficients loads back close to the undistorted render."""
    w, h, dist = 64, 48, np.array([-0.25, 0.05, 0.002, -0.001])
    meta = json.loads((scene / "transforms.json").read_text())
    k = np.array([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]])
    # Blurred so that the two bilinear resamplings (distort here, undistort in the loader) lose little detail.
    clean = cv2.GaussianBlur(cv2.imread(str(scene / "images/frame_00001.png")).astype(np.float32), (0, 0), 1.5)
    # Each distorted pixel shows what the ideal pinhole camera sees at its undistorted position.
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64) + 0.5
    ideal = cv2.undistortPoints(grid, k, dist, P=k).reshape(h, w, 2) - 0.5
    warped = cv2.remap(clean, ideal[..., 0].astype(np.float32), ideal[..., 1].astype(np.float32), cv2.INTER_LINEAR)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images/d.png"), np.round(warped).astype(np.uint8))
    frame = {"file_path": "./images/d.png", "transform_matrix": meta["frames"][1]["transform_matrix"]}
    dmeta = {k_: meta[k_] for k_ in ("fl_x", "fl_y", "cx", "cy", "w", "h")}
    coeffs = dict(zip(("k1", "k2", "p1", "p2"), dist))
    (tmp_path / "transforms.json").write_text(json.dumps({**dmeta, **coeffs, "frames": [frame]}))
    loaded = load_transforms(tmp_path, split="all").images[0].numpy()[..., ::-1] * 255
    core = (slice(8, -8), slice(8, -8))  # the border of the undistorted image has no source pixels
    assert np.abs(loaded[core] - clean[core]).mean() < 0.5 * np.abs(warped[core] - clean[core]).mean()


def test_nerfstudio_dataparsers_parse_the_scene(scene):
    from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    meta = json.loads((scene / "transforms.json").read_text())
    c2w = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float32)
    # The nerfstudio parser's seed cloud (ply_file_path) needs open3d, which we do not install.
    for config in (NerfstudioDataParserConfig(data=scene, load_3D_points=False), ColmapDataParserConfig(data=scene)):
        parser = config.setup()
        for split, views in (("train", [1, 2, 3, 5, 6, 7, 9, 10, 11]), ("val", [0, 4, 8]), ("test", [0, 4, 8])):
            out = parser.get_dataparser_outputs(split)
            assert [p.name for p in out.image_filenames] == [f"frame_{i:05d}.png" for i in views]
            # Undo nerfstudio's orient/centre/scale: its cameras are ours.
            t, s = out.dataparser_transform, out.dataparser_scale
            poses = out.cameras.camera_to_worlds
            torch.testing.assert_close(poses[:, :, :3], t[:, :3] @ c2w[views, :3, :3], atol=1e-5, rtol=0)
            centres = s * (t[:, :3] @ c2w[views, :3, 3:] + t[:, 3:])[..., 0]
            torch.testing.assert_close(poses[:, :, 3], centres, atol=1e-5, rtol=0)
            assert torch.allclose(out.cameras.fx, torch.tensor(meta["fl_x"])) and int(out.cameras.width[0]) == 64
        if isinstance(config, ColmapDataParserConfig):
            xyz, _ = load_seed_points(scene)
            expected = s * (xyz @ t[:, :3].T + t[:, 3])
            torch.testing.assert_close(out.metadata["points3D_xyz"], expected, atol=1e-5, rtol=0)


def test_loader_errors_name_the_file(scene, tmp_path):
    with pytest.raises(SplatpackError, match="transforms.json: no such file"):
        load_transforms(tmp_path / "transforms.json")
    (tmp_path / "transforms.json").write_text("{not json")
    with pytest.raises(SplatpackError, match="transforms.json: not valid JSON"):
        load_transforms(tmp_path)
    meta = json.loads((scene / "transforms.json").read_text())
    meta["frames"][3]["file_path"] = "images/gone.png"
    meta.pop("train_filenames"), meta.pop("val_filenames"), meta.pop("test_filenames")
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    (tmp_path / "images").symlink_to(scene / "images")
    with pytest.raises(SplatpackError, match="gone.png: image listed by the dataset is missing"):
        load_transforms(tmp_path, split="all")
    with pytest.raises(SplatpackError, match="no COLMAP model"):
        load_colmap(tmp_path)
    with pytest.raises(SplatpackError, match="unknown split"):
        load_colmap(scene, split="validation")


def test_extra_held_out_views_change_no_training_input(scene, tmp_path):
    extra = generate_demo_scene(tmp_path / "extra", **{**SMALL, "extra_test_views": 2})
    meta = json.loads((extra / "transforms.json").read_text())
    assert meta["train_filenames"] == json.loads((scene / "transforms.json").read_text())["train_filenames"]
    assert meta["test_filenames"] == [f"images/frame_{i:05d}.png" for i in (0, 4, 8, 12, 13)]
    assert (extra / "sparse_pc.ply").read_bytes() == (scene / "sparse_pc.ply").read_bytes()
    for name in meta["train_filenames"]:
        assert (extra / name).read_bytes() == (scene / name).read_bytes()
    # The extra views lie between ring cameras: not copies of any ring view.
    ring = {(scene / f"images/frame_{i:05d}.png").read_bytes() for i in range(12)}
    assert not {(extra / f"images/frame_{i:05d}.png").read_bytes() for i in (12, 13)} & ring
    assert load_colmap(extra, split="test").names == [Path(f).name for f in meta["test_filenames"]]


def test_default_demo_scene(demo_scene):
    params = json.loads((demo_scene / "scene.json").read_text())
    assert (params["n_views"], params["width"], params["height"], params["test_every"]) == (48, 160, 120, 8)
    train, test = load_transforms(demo_scene, split="train"), load_colmap(demo_scene, split="test")
    # 6 of the ring's 48 views and 34 extra ones between them are held out (enough to resolve tenths of a dB).
    assert (len(train.names), len(test.names), train.width, train.height) == (42, 40, 160, 120)
    assert test.names[:6] == [f"frame_{i:05d}.png" for i in range(0, 48, 8)]
    points, colours = load_seed_points(demo_scene)
    assert 3000 <= len(points) <= 5000 and colours.std(0).min() > 0.1  # a varied cloud, not one colour


def test_fox_loads(shared_data):
    fox = shared_data / "fox" / "transforms.json"
    train, test = load_transforms(fox, split="train", downscale=8), load_transforms(fox, split="test", downscale=8)
    files = sorted(f"images/{p.name}" for p in (shared_data / "fox" / "images").iterdir())
    assert test.names == files[::8] and train.names == [f for i, f in enumerate(files) if i % 8]
    assert (len(train.names), len(test.names)) == (43, 7)
    assert (train.width, train.height) == (135, 240) and train.images.shape == (43, 240, 135, 3)
    meta = json.loads(fox.read_text())
    torch.testing.assert_close(
        train.Ks[0],
        torch.tensor(
            [[meta["fl_x"] / 8, 0, meta["cx"] / 8], [0, meta["fl_y"] / 8, meta["cy"] / 8], [0, 0, 1]],
            dtype=torch.float32,
        ),
    )
    assert 0.15 < float(train.images.mean()) < 0.85
    # The capture circles one object: the point nearest to all optical axes lies in front of every camera.
    c2w = torch.linalg.inv(torch.cat([train.viewmats, test.viewmats]).double())
    centre, axis = c2w[:, :3, 3], c2w[:, :3, 2]
    proj = torch.eye(3, dtype=torch.float64) - axis[:, :, None] * axis[:, None, :]
    focus = torch.linalg.solve(proj.sum(0), (proj @ centre[:, :, None]).sum(0))[:, 0]
    depth = ((focus - centre) * axis).sum(1)
    assert (depth > 0).all()
