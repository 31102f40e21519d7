import numpy as np
import pytest
import yaml

from depth_estimation_ros.core.camera import CameraModel


@pytest.fixture
def camera():
    return CameraModel.from_intrinsics(518.858, 519.470, 325.582, 253.736, 640, 480, frame_id="camera_optical")


def project(camera, points):
    """Pixel coordinates of 3-D points (N, 3) through P."""
    uvw = np.c_[points, np.ones(len(points))] @ camera.P.T
    return uvw[:, :2] / uvw[:, 2:]


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    return np.c_[rng.uniform(-2, 2, 50), rng.uniform(-1.5, 1.5, 50), rng.uniform(1, 8, 50)]


def test_resize_follows_the_pixel_centre_convention(camera, points):
    small = camera.resize(352, 256)
    sx, sy = 352 / 640, 256 / 480
    expected = (project(camera, points) + 0.5) * [sx, sy] - 0.5
    assert np.allclose(project(small, points), expected)
    assert small.size == (352, 256)
    assert camera.resize(352, 256).resize(640, 480).isclose(camera)


def test_crop_shifts_the_principal_point(camera, points):
    cropped = camera.crop(41, 45, 560, 426)
    assert np.allclose(project(cropped, points), project(camera, points) - [41, 45])
    assert (cropped.width, cropped.height) == (560, 426)
    assert cropped.crop(-41, -45, 640, 480).isclose(camera)


def test_letterbox_uses_one_scale_and_the_padding_offset(camera, points):
    boxed, box = camera.letterbox(352, 352)
    assert box.scale == pytest.approx(352 / 640)
    assert (box.inner_width, box.inner_height) == (352, 264)
    assert (box.pad_x, box.pad_y) == (0, 44)
    expected = (project(camera, points) + 0.5) * [352 / 640, 264 / 480] - 0.5 + [0, 44]
    assert np.allclose(project(boxed, points), expected)
    assert boxed.fx / boxed.fy == pytest.approx(camera.fx / camera.fy)  # aspect kept


def test_decimation_samples_every_nth_pixel_exactly(camera, points):
    sub = camera.decimate(4)
    assert sub.size == (160, 120)
    assert np.allclose(project(sub, points), project(camera, points) / 4)  # pixel 4u' of the source is u'
    assert camera.decimate(3).size == (214, 160)  # image[::3, ::3] of 640x480
    assert camera.decimate(1) is camera
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="decimation must be a positive integer"):
            camera.decimate(bad)


def test_horizontal_flip_mirrors_the_principal_point(camera, points):
    mirrored = camera.flip_horizontal()
    u = project(mirrored, points * [-1, 1, 1])  # the mirrored scene
    assert np.allclose(u[:, 0], camera.width - 1 - project(camera, points)[:, 0])
    assert np.allclose(u[:, 1], project(camera, points)[:, 1])
    assert mirrored.flip_horizontal().isclose(camera)


def test_stereo_baseline_in_p_scales_with_the_focal_length():
    P = [[500, 0, 320, -50], [0, 500, 240, 0], [0, 0, 1, 0]]
    right = CameraModel(640, 480, [[500, 0, 320], [0, 500, 240], [0, 0, 1]], P=P)
    half = right.resize(320, 240)
    assert half.P[0, 3] == pytest.approx(-25)  # −fx·B with fx halved
    assert half.P[0, 3] / -half.fx == pytest.approx(0.1)  # baseline unchanged


@pytest.mark.parametrize(("fx", "fy"), [(0, 500), (500, -1), (float("nan"), 500)])
def test_non_positive_focal_lengths_are_rejected(fx, fy):
    with pytest.raises(ValueError, match=r"focal lengths|finite"):
        CameraModel.from_intrinsics(fx, fy, 320, 240, 640, 480)


@pytest.mark.parametrize(("width", "height"), [(0, 480), (640, -1), (640.5, 480), (True, 480)])
def test_bad_image_sizes_are_rejected(width, height):
    with pytest.raises(ValueError, match="positive integer"):
        CameraModel.from_intrinsics(500, 500, 320, 240, width, height)


def test_an_image_of_another_size_is_rejected_with_both_sizes(camera):
    with pytest.raises(ValueError, match=r"image is 320x240 \(WxH\) but the camera describes 640x480"):
        camera.check_image((240, 320, 3))


def test_camera_info_yaml_round_trips(camera, tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(camera.to_dict()))
    assert CameraModel.from_yaml(path) == camera


def test_ros_calibration_yaml_loads_with_k_d_r_p(tmp_path):
    path = tmp_path / "head_camera.yaml"
    path.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: head_camera\n"
        "camera_matrix: {rows: 3, cols: 3, data: [520.0, 0.0, 320.5, 0.0, 521.0, 240.5, 0.0, 0.0, 1.0]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0.001, 0.002, 0.0]}\n"
        "rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n"
        "projection_matrix: {rows: 3, cols: 4, data: [510.0, 0, 322.0, 0, 0, 511.0, 241.0, 0, 0, 0, 1, 0]}\n"
    )
    cam = CameraModel.from_yaml(path)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (510.0, 511.0, 322.0, 241.0)  # from P, as depth_image_proc
    assert cam.K[0, 0] == 520.0
    assert cam.D.tolist() == [0.1, -0.2, 0.001, 0.002, 0.0]


def test_bad_camera_files_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        CameraModel.from_yaml(tmp_path / "missing.yaml")
    partial = tmp_path / "partial.yaml"
    partial.write_text("image_width: 640\nimage_height: 480\n")
    with pytest.raises(ValueError, match=r"partial\.yaml: missing 'camera_matrix'"):
        CameraModel.from_yaml(partial)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("!!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(ValueError, match=r"unsafe\.yaml"):
        CameraModel.from_yaml(unsafe)
