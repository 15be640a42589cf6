"""A simulated character in an engine: the parts every character environment shares.

:class:`CharEnv` owns the engine, the simulated character (and, when displayed, a
non-colliding reference character), the character's :class:`KinCharModel`, episode time
and lengths, failed-env handling, the viewer and video recording. Task environments
subclass it and implement observations, rewards and terminations.

One control step (:meth:`CharEnv.step`) runs these hooks in this order:

1. :meth:`CharEnv._pre_physics_step`: send the action to the engine;
2. :meth:`CharEnv._advance`: the physics (kinematic environments set the pose instead);
3. :meth:`CharEnv._read_state`: read :attr:`CharEnv.char_state` (and whatever the env
   derives from it alone, e.g. the reference frame now);
4. :meth:`CharEnv._post_physics_step`: advance what moves with the step (task goals,
   AMP observation stacks);
5. observation, reward and termination of the new state, then ``info``.

A reset (:meth:`CharEnv.reset`) places the characters (:meth:`CharEnv._reset_envs`) and
runs step 3, not 4.

With a ``domain_rand`` config (:mod:`mimickit.envs.domain_rand`) a reset first draws the
env's randomised physics, step 1 applies the pushes due and sends the action through the
delay and filter, and the observations of resets and steps carry the configured noise.

Observations are named terms (:mod:`mimickit.envs.char_obs`): the env's own
(:meth:`CharEnv._obs_terms`, privileged simulator state such as root height and body
velocities). With ``actor_obs`` (``deployable`` or a list of term names) the observation is
the actor's, picked from the robot's measurable terms (:func:`mimickit.envs.char_obs.robot_obs_terms`)
and the env's, and :meth:`CharEnv.get_critic_obs` gives the critic the env's terms plus the
actor's, without noise (asymmetric actor-critic).
"""
from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion_lib import MotionLib
from mimickit.engines.engine_builder import build_engine
from mimickit.envs import char_obs
from mimickit.envs.actuators import ActuatorConfig, joint_dynamics
from mimickit.envs.base_env import BaseEnv, BoxSpace, DoneFlags, ObsSlice
from mimickit.envs.char_state import CharState
from mimickit.envs.domain_rand import DomainRand, DomainRandConfig
from mimickit.util.errors import MimicKitError, require_file
from mimickit.util.video import VideoWriter


class CharEnv(BaseEnv):
    """Base of character environments.

    Args:
        char_file: MJCF of the character (``data/assets/...``).
        engine_config_file: engine YAML (``data/engines/...``).
        num_envs, device, visualize: as the run flags.
        video_file: record env 0 to this MP4 when given.
        episode_length: s; an episode ends with ``DoneFlags.TIME`` when it is reached.
        show_reference: add a display-only reference character (only when
            visualizing or recording).
        domain_rand: the env YAML's ``domain_rand`` block; None: no randomisation.
        config_file: the env YAML, named in errors about ``domain_rand``, ``actuators`` and ``actor_obs``.
        actuators: the env YAML's ``actuators`` table (:mod:`mimickit.envs.actuators`); None or
            empty: the character file's joints and motors.
        actor_obs: the env YAML's ``actor_obs``: ``deployable`` (the robot's terms and
            :meth:`_goal_obs_names`), a list of term names (of :data:`char_obs.ROBOT_OBS_TERMS`
            and :meth:`_obs_terms`), or None: the actor and the critic take :meth:`_obs_terms`.

    Attributes:
        domain_rand: the :class:`DomainRand` of ``domain_rand``, or None.
        prev_action: ``[num_envs, action_dim]`` the action of the last :meth:`step` (env units);
            the action space's neutral after a reset.

    Raises:
        MimicKitError: on a missing character file, a bad engine config, or a
            ``domain_rand`` the engine or character cannot do; a bad ``actor_obs`` from
            :meth:`check_actor_obs`, which subclasses call at the end of their constructor.
    """

    def __init__(self, char_file: str, engine_config_file: str, num_envs: int, device: str,
                 visualize: bool, video_file: Optional[str], episode_length: float,
                 show_reference: bool = False, domain_rand: Optional[DomainRandConfig] = None,
                 config_file: str = "", actor_obs: Union[str, List[str], None] = None,
                 actuators: Optional[Dict[str, ActuatorConfig]] = None):
        super().__init__(num_envs, device)
        require_file(char_file, "character file (char_file)")
        self.kin_char_model = KinCharModel(char_file, device=device)
        self.engine = build_engine(engine_config_file, num_envs, device, visualize)
        self.char_id = self.engine.add_character(char_file, "char")
        if actuators:
            self.engine.set_joint_dynamics(self.char_id, joint_dynamics(
                actuators, self.engine.get_dof_names(self.char_id), config_file))
        displayed = visualize or video_file is not None
        self.ref_char_id = (self.engine.add_character(char_file, "ref", is_reference=True)
                            if show_reference and displayed else None)
        self.engine.initialize()
        self._visualize = visualize
        self._video = VideoWriter(video_file, fps=1.0 / self.engine.control_dt) if video_file else None

        self.episode_length = episode_length
        self.time = torch.zeros(num_envs, device=device)
        self.done = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.char_state = CharState.read(self.engine, self.char_id)
        self.domain_rand = (DomainRand(domain_rand, self.engine, self.char_id, config_file)
                            if domain_rand is not None else None)
        self._config_file = config_file
        self._actor_obs = actor_obs
        neutral = self.get_action_space().neutral
        self._neutral_action = neutral if neutral is not None else torch.zeros(self.kin_char_model.num_dofs,
                                                                               device=device)
        self.prev_action = self._neutral_action.expand(num_envs, -1).clone()

    def set_domain_rand(self, cfg: Optional[DomainRandConfig], source: str) -> None:
        """Replace the env's randomisation by ``cfg`` (None: none) from the next reset on.

        The physics the current randomisation changed is put back to nominal first, so ``cfg``
        starts from the file's physics (robustness tests: ``--perturbations``). ``source``
        names the perturbation in errors.

        Raises:
            MimicKitError: as the constructor's ``domain_rand``.
        """
        if self.domain_rand is not None:
            self.domain_rand.restore()
        self.domain_rand = DomainRand(cfg, self.engine, self.char_id, source) if cfg is not None else None

    # ----------------------------------------------------------------- episode loop
    @property
    def control_dt(self) -> float:
        """Seconds per :meth:`step`."""
        return self.engine.control_dt

    def reset(self, env_ids: Optional[Tensor] = None) -> Tensor:
        """As :meth:`BaseEnv.reset`: zero the episode clocks, place the characters, observe."""
        if env_ids is None:
            env_ids = torch.arange(self.num_envs, device=self.device)
        if len(env_ids) > 0:
            self.time[env_ids] = 0.0
            self.done[env_ids] = DoneFlags.NULL
            self.prev_action[env_ids] = self._neutral_action
            if self.domain_rand is not None:
                self.domain_rand.reset(env_ids)
            self._reset_envs(env_ids)
        self._read_state()
        return self._observe()

    def step(self, action: Tensor) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Any]]:
        """As :meth:`BaseEnv.step`, in the order of the module docstring.

        ``info["failed_envs"]`` holds the ids (long ``[k]``) of the envs whose simulation
        went bad this step (:meth:`Engine.pop_failed_envs`); their ``done`` is ``FAIL``.
        With randomisation, ``info["domain_rand"]`` holds :meth:`DomainRand.values`.
        """
        self.prev_action = action.detach().clone()
        self._pre_physics_step(action)
        self._advance()
        self.time += self.engine.control_dt
        failed_envs = self.engine.pop_failed_envs()
        self._read_state()
        self._post_physics_step()
        obs = self._observe()
        reward = self._compute_reward()
        self.done[:] = self._compute_done()
        self.done[failed_envs] = DoneFlags.FAIL
        self._render()
        info: Dict[str, Any] = {"failed_envs": failed_envs}
        info.update(self._step_info())
        if self.domain_rand is not None:
            info["domain_rand"] = self.domain_rand.values()
        return obs, reward, self.done.clone(), info

    def _observe(self) -> Tensor:
        """``[num_envs, obs_dim]`` observations of the current state, with the configured noise."""
        obs = self._compute_obs()
        if self.domain_rand is not None:
            obs = self.domain_rand.observe(obs, self.get_obs_layout)
        return obs

    def _pre_physics_step(self, action: Tensor) -> None:
        """Send ``[num_envs, action_dim]`` actions to the engine as the character's commands.

        With randomisation, the pushes due are applied first and the action goes through the
        delay and filter (:meth:`DomainRand.before_step`).
        """
        if self.domain_rand is not None:
            action = self.domain_rand.before_step(action, self.time)
        self.engine.set_cmd(self.char_id, action)

    def _advance(self) -> None:
        """Advance the world one control step; kinematic environments override it."""
        self.engine.step()

    def _read_state(self) -> None:
        """Read :attr:`char_state` after a physics step or a reset.

        Subclasses extend it with what they derive from the state alone (e.g. the reference
        frame at the new time).
        """
        self.char_state = CharState.read(self.engine, self.char_id)

    def _post_physics_step(self) -> None:
        """Advance what moves with a control step, after :meth:`_read_state` (not run at resets)."""

    def _step_info(self) -> Dict[str, Any]:
        """Extra entries for the ``info`` dict of :meth:`step`."""
        return {}

    def _compute_done(self) -> Tensor:
        """``[num_envs]`` DoneFlags: TIME once ``episode_length`` is reached."""
        done = torch.full_like(self.done, DoneFlags.NULL)
        done[self.time >= self.episode_length - 1e-6] = DoneFlags.TIME
        return done

    def _render(self) -> None:
        if self._visualize:
            self.engine.render()
        if self._video is not None:
            self._video.append(self.engine.render_frame(640, 480))

    def close(self) -> None:
        """Close the video writer, then the engine (and its viewer). Safe to call twice."""
        if self._video is not None:
            self._video.close()
            self._video = None
        self.engine.close()

    def body_ids(self, names: List[str], key: str, config_file: str) -> Tensor:
        """Long ``[len(names)]`` indices of the character's bodies ``names``.

        Raises:
            MimicKitError: naming ``config_file``, ``key`` and the known bodies when a name
                is not a body of the character.
        """
        bodies = self.kin_char_model.body_names
        for name in names:
            if name not in bodies:
                raise MimicKitError("{}: key '{}': no body '{}' in {} (bodies: {})".format(
                    config_file, key, name, self.kin_char_model.file, ", ".join(bodies)))
        return torch.tensor([bodies.index(n) for n in names], dtype=torch.long, device=self.device)

    def fall_contact_mask(self, contact_bodies: List[str], config_file: str) -> Tensor:
        """``[num_bodies]`` bool: the bodies whose ground contact is a fall (early termination).

        That is all bodies but ``contact_bodies`` (config key ``contact_bodies``).
        """
        mask = torch.ones(self.kin_char_model.num_bodies, dtype=torch.bool, device=self.device)
        mask[self.body_ids(contact_bodies, "contact_bodies", config_file)] = False
        return mask

    # ----------------------------------------------------------------- spaces
    def get_action_space(self) -> BoxSpace:
        """The space of one action, ``(action_dim,)``, by control mode.

        ``pos`` mode: PD targets (rad) within the dof limits, neutral at the default pose
        (:attr:`KinCharModel.default_dof_pos`); ``torque`` mode: torques (N·m) within the
        torque limits, neutral at 0.
        """
        if self.engine.control_mode == "torque":
            limit = self.engine.get_torque_limits(self.char_id)
            return BoxSpace(low=-limit, high=limit, neutral=torch.zeros_like(limit))
        low, high = self.engine.get_dof_limits(self.char_id)
        neutral = self.kin_char_model.default_dof_pos.to(low).clamp(low, high)
        return BoxSpace(low=low, high=high, neutral=neutral)

    def get_obs_space(self) -> BoxSpace:
        """Unbounded, of the size of the current observation."""
        return BoxSpace.unbounded(self._compute_obs().shape[-1], self.device)

    # ----------------------------------------------------------------- character state
    def set_char_state(self, char_id: int, env_ids: Tensor, root_pos: Tensor, root_rot: Tensor,
                       root_vel: Tensor, root_ang_vel: Tensor, dof_pos: Tensor, dof_vel: Tensor) -> None:
        """Set a character's state in ``env_ids`` (``[k]``); all values world frame, [k, ...]."""
        self.engine.set_root_pos(char_id, env_ids, root_pos)
        self.engine.set_root_rot(char_id, env_ids, root_rot)
        self.engine.set_root_vel(char_id, env_ids, root_vel)
        self.engine.set_root_ang_vel(char_id, env_ids, root_ang_vel)
        self.engine.set_dof_pos(char_id, env_ids, dof_pos)
        self.engine.set_dof_vel(char_id, env_ids, dof_vel)

    def set_char_to_motion(self, motion_lib: MotionLib, env_ids: Tensor, motion_ids: Tensor,
                           times: Tensor) -> None:
        """Put the simulated character of ``env_ids`` (``[k]``) in the state of clips at given times.

        Pose and velocities of clips ``motion_ids`` (``[k]``) at ``times`` (``[k]`` s),
        converted from the clip's joint rotations to the simulator's dof coordinates.
        """
        root_pos, root_rot, root_vel, root_ang_vel, joint_rot, joint_dof_vel = \
            motion_lib.calc_motion_frame(motion_ids, times)
        dof_pos = self.kin_char_model.joint_rot_to_dof_pos(joint_rot)
        dof_vel = self.kin_char_model.joint_dof_vel_to_dof_vel(dof_pos, joint_dof_vel)
        self.set_char_state(self.char_id, env_ids, root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel)

    # ----------------------------------------------------------------- observations
    def _robot_obs_terms(self) -> List[char_obs.ObsTerm]:
        """:func:`char_obs.robot_obs_terms` of the current state and :attr:`prev_action`."""
        s = self.char_state
        units = "N·m" if self.engine.control_mode == "torque" else "rad"
        return char_obs.robot_obs_terms(s.root_rot, s.root_ang_vel, s.dof_pos, s.dof_vel,
                                        self.kin_char_model.default_dof_pos, self.prev_action, units)

    def _goal_obs_names(self) -> Sequence[str]:
        """Names of the terms of the goal a robot is given (command, reference), for ``actor_obs: deployable``.

        None by default; task envs override it.
        """
        return ()

    def _actor_obs_terms(self) -> List[char_obs.ObsTerm]:
        """The observation's terms: :meth:`_obs_terms`, or with ``actor_obs`` the ones it names."""
        full = self._obs_terms()
        if self._actor_obs is None:
            return full
        names = char_obs.actor_obs_names(self._actor_obs, self._goal_obs_names(), self._config_file)
        return char_obs.select_obs_terms(names, self._robot_obs_terms() + full, self._config_file)

    def check_actor_obs(self) -> None:
        """Raise :class:`MimicKitError` naming the env YAML for an ``actor_obs`` the env cannot give.

        An unknown term, a bad value, or ``deployable`` for a goal a robot cannot be given;
        needs the current state (subclasses call it once their constructor has read it).
        """
        self._actor_obs_terms()

    def _compute_obs(self) -> Tensor:
        """``[num_envs, obs_dim]`` observations of the current state (no noise)."""
        return char_obs.cat_obs_terms(self._actor_obs_terms())

    def get_obs_layout(self) -> List[ObsSlice]:
        """Parts of the (actor's) observation in order; see :meth:`_obs_terms` and ``actor_obs``."""
        return char_obs.obs_layout(self._actor_obs_terms())

    def _critic_obs_terms(self) -> Optional[List[char_obs.ObsTerm]]:
        """:func:`char_obs.critic_obs_terms` with ``actor_obs``, else None."""
        if self._actor_obs is None:
            return None
        return char_obs.critic_obs_terms(self._obs_terms(), self._actor_obs_terms())

    def get_critic_obs(self) -> Optional[Tensor]:
        """As :meth:`BaseEnv.get_critic_obs`: with ``actor_obs``, the env's terms then the actor's others."""
        terms = self._critic_obs_terms()
        return char_obs.cat_obs_terms(terms) if terms is not None else None

    def get_critic_obs_layout(self) -> Optional[List[ObsSlice]]:
        """The parts of :meth:`get_critic_obs`, or None without ``actor_obs``."""
        terms = self._critic_obs_terms()
        return char_obs.obs_layout(terms) if terms is not None else None

    # ----------------------------------------------------------------- task hooks
    @abc.abstractmethod
    def _reset_envs(self, env_ids: Tensor) -> None:
        """Put the characters of ``env_ids`` in their initial state."""

    @abc.abstractmethod
    def _obs_terms(self) -> List[char_obs.ObsTerm]:
        """The env's full observation of the current state as named terms, each ``[num_envs, width]``."""

    @abc.abstractmethod
    def _compute_reward(self) -> Tensor:
        """``[num_envs]`` rewards of the last step."""
