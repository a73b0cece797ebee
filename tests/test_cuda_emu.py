"""The CPU emulator of the CUDA execution model (fastlayers._cuda_emu) checks itself.

Every planted bug in csrc/cuda/emu/selftest.cu must be caught with a diagnostic naming
the kernel (and the block and thread where there is one); every correct variant must
pass under every schedule, and under the threads engine. EmuArray must round-trip data,
fill new memory with NaN, and free it when it is garbage.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastlayers import _cuda_emu as emu
from fastlayers import cuda_emu
from fastlayers.cuda_emu import SCHEDULES, EmuArray, schedule

SANITIZERS = emu.runtime_info()["sanitizers"]
ASAN = "address" in SANITIZERS
TSAN = "thread" in SANITIZERS
ENGINES = ["fibers", "threads"] if "thread" not in SANITIZERS else ["threads"]


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test frees what it allocates (the leak check of the emulated device)."""
    gc.collect()
    before = set(cuda_emu.live_allocations())
    yield
    gc.collect()
    leaked = set(cuda_emu.live_allocations()) - before
    assert not leaked, f"leaked emulated allocations: {sorted(leaked)}"


@pytest.fixture(params=ENGINES)
def engine(request):
    """Runs the test under each engine, restoring the one in force."""
    previous = cuda_emu.engine()
    cuda_emu.set_engine(request.param)
    yield request.param
    cuda_emu.set_engine(previous)


def f32(a):
    return np.asarray(a, dtype=np.float32)


# --- EmuArray -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8])
def test_round_trip(dtype, rng):
    host = (rng.standard_normal((3, 5, 7)) * 100).astype(dtype)
    dev = cuda_emu.asarray(host)
    assert dev.shape == (3, 5, 7) and dev.dtype == np.dtype(dtype) and dev.size == 105
    np.testing.assert_array_equal(dev.get(), host)
    cai = dev.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (3, 5, 7) and cai["strides"] is None
    assert cai["typestr"] == np.dtype(dtype).str and cai["data"] == (dev.ptr, False)


def test_new_memory_is_nan_and_zeros_is_zero():
    assert np.isnan(cuda_emu.empty((4, 3)).get()).all()
    assert (cuda_emu.empty(5, np.int32).get() == -1).all()  # 0xFFFFFFFF
    np.testing.assert_array_equal(cuda_emu.zeros((2, 2), np.int64).get(), np.zeros((2, 2), np.int64))


def test_views_share_memory_and_empty_arrays_work():
    a = cuda_emu.asarray(np.arange(6, dtype=np.float32))
    v = a.reshape(2, -1)
    assert v.shape == (2, 3) and v.ptr == a.ptr
    np.testing.assert_array_equal(v.get(), np.arange(6).reshape(2, 3))
    del a
    gc.collect()
    np.testing.assert_array_equal(v.get().ravel(), np.arange(6))  # the view keeps it alive
    z = cuda_emu.empty((0, 4))
    assert z.size == 0 and z.get().shape == (0, 4)


def test_memory_is_freed_with_the_array():
    before = len(cuda_emu.live_allocations())
    arrays = [cuda_emu.empty(100) for _ in range(5)]
    assert len(cuda_emu.live_allocations()) == before + 5
    del arrays
    gc.collect()
    assert len(cuda_emu.live_allocations()) == before


def test_runtime_errors_are_python_exceptions():
    with pytest.raises(MemoryError, match="cudaMalloc of .* bytes"):
        emu.malloc(emu.memory_limit() + 1)
    p = emu.malloc(16)
    with pytest.raises(RuntimeError, match="not inside one live device allocation"):
        emu.memcpy_htod(p, np.zeros(5, np.float32))  # 20 bytes into 16
    emu.free(p)
    with pytest.raises(RuntimeError, match="double free"):
        emu.free(p)
    with pytest.raises(ValueError, match="schedule: expected one of"):
        emu.set_schedule("fifo", 0)
    with pytest.raises(ValueError, match="name: expected one of"):
        with schedule("fifo"):
            pass


def test_schedule_context_manager_restores():
    assert set(SCHEDULES) == {"round-robin", "greedy", "ascending", "descending", "random"}
    before = emu.schedule()
    with schedule("random", seed=7):
        assert emu.schedule() == ("random", 7)
    assert emu.schedule() == before


# --- correct kernels pass under every schedule and engine ---------------------------------


@pytest.mark.parametrize("sched", SCHEDULES)
def test_correct_variants_pass(sched, engine, rng):
    with schedule(sched, seed=3):
        n, block = 4 * 64, 64
        x = rng.standard_normal(n).astype(np.float32)
        out = cuda_emu.empty(n)
        emu.selftest_block_reverse(out, cuda_emu.asarray(x), block, True)
        np.testing.assert_array_equal(out.get(), x.reshape(-1, block)[:, ::-1].ravel())

        x = rng.standard_normal(100).astype(np.float32)
        out = cuda_emu.empty(100)
        emu.selftest_bounded_copy(out, cuda_emu.asarray(x), 64, True)
        np.testing.assert_array_equal(out.get(), x)

        x = rng.standard_normal(48).astype(np.float32)
        out = cuda_emu.empty(2)
        emu.selftest_warp_sum(out, cuda_emu.asarray(x), False)
        np.testing.assert_allclose(out.get(), [x[:32].sum(), x[32:].sum()], rtol=1e-5)

        out = cuda_emu.empty(40)
        emu.selftest_barrier_in_if(out, False)
        np.testing.assert_array_equal(out.get(), np.arange(1, 41))

        out = cuda_emu.empty(32)
        emu.selftest_warp_then_barrier(out, False)
        emu.selftest_fill_ones(out, False)
        np.testing.assert_array_equal(out.get(), np.ones(32))

        out = cuda_emu.empty(8)
        emu.selftest_two_barriers(out, False)
        np.testing.assert_array_equal(out.get(), np.full(8, 2.0))

        x = rng.standard_normal(3 * 96).astype(np.float32)
        out = cuda_emu.empty(3)
        emu.selftest_block_sums(out, cuda_emu.asarray(x), 96, False)
        np.testing.assert_allclose(out.get(), x.reshape(3, 96).sum(axis=1), rtol=1e-5, atol=1e-5)

        x = rng.standard_normal(7).astype(np.float32)
        out = cuda_emu.empty(7)
        emu.selftest_prefix_sums(out, cuda_emu.asarray(x), False)
        np.testing.assert_allclose(out.get(), np.cumsum(x), rtol=1e-5, atol=1e-5)


def test_warp_operations(engine):
    out, counter = cuda_emu.empty((6, 64)), cuda_emu.zeros(1, np.int32)
    emu.selftest_warp_ops(out, counter)
    t = np.arange(64)
    lane = t % 32
    x, up, any_, all_, odd, bcast = out.get()
    np.testing.assert_array_equal(x, t ^ 1)  # __shfl_xor_sync
    np.testing.assert_array_equal(up, np.where(lane >= 3, t - 3, t))  # __shfl_up_sync by 3
    np.testing.assert_array_equal(any_, t < 32)  # only warp 0 has thread 5
    np.testing.assert_array_equal(all_, np.ones(64))
    np.testing.assert_array_equal(odd, np.full(64, 16))  # popc of the ballot of odd lanes
    np.testing.assert_array_equal(bcast, t // 8 * 8 + 7)  # lane 7 of each 8-lane segment
    assert counter.get()[0] == 64  # atomicAdd


# --- planted bugs are caught --------------------------------------------------------------


def _exposes_missing_syncthreads(sched):
    n, block = 2 * 64, 64
    x = np.arange(n, dtype=np.float32)
    out = cuda_emu.empty(n)
    with schedule(sched, seed=1):
        emu.selftest_block_reverse(out, cuda_emu.asarray(x), block, False)
    return not np.array_equal(out.get(), x.reshape(-1, block)[:, ::-1].ravel())


def _run_child(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (a sanitizer report ends the process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=os.environ, timeout=300
    )


def test_missing_syncthreads_is_exposed():
    # Without the barrier a thread reads shared memory another thread has not written yet:
    # dynamic shared memory is NaN-filled per block, so the read shows as NaN.
    if TSAN:
        # The threads run concurrently and ThreadSanitizer reports the race, but only when
        # a reader and its writer do overlap: a launch whose threads happen to run one
        # after the other is ordered by the engine's own locks. Up to 50 launches, each
        # another chance; the report ends the child at the first race.
        r = _run_child(
            """
            import numpy as np
            from fastlayers import _cuda_emu as emu, cuda_emu
            x = cuda_emu.asarray(np.arange(128, dtype=np.float32)); out = cuda_emu.empty(128)
            for _ in range(50):
                emu.selftest_block_reverse(out, x, 64, False)
            """
        )
        assert "ThreadSanitizer: data race" in r.stderr and "block_reverse_kernel" in r.stderr, r.stderr[-3000:]
        return
    exposed = [s for s in SCHEDULES if _exposes_missing_syncthreads(s)]
    print("missing __syncthreads exposed under:", exposed)
    assert "round-robin" in exposed and "descending" in exposed, exposed


@pytest.mark.parametrize("sched", SCHEDULES)
def test_unwritten_static_shared_memory_reads_as_nan(sched, engine, rng):
    # Thread 0 adds all 32 per-warp slots of a static shared array, but a 64-thread block
    # writes two. On a GPU the other 30 hold whatever was there; the emulator fills each
    # block's FL_SHARED arrays with NaN, so the sums of every block show the bug.
    x = rng.standard_normal(4 * 64).astype(np.float32)
    out = cuda_emu.empty(4)
    with schedule(sched, seed=5):
        emu.selftest_block_sums(out, cuda_emu.asarray(x), 64, True)
    assert np.isnan(out.get()).all(), out.get()
    # and every block starts afresh: the correct variant, run after the buggy one, is clean
    with schedule(sched, seed=5):
        emu.selftest_block_sums(out, cuda_emu.asarray(x), 64, False)
    np.testing.assert_allclose(out.get(), x.reshape(4, 64).sum(axis=1), rtol=1e-5, atol=1e-5)


def test_dependence_on_block_order_is_exposed(rng):
    # Block b reads out[b - 1], written by block b - 1: right only when blocks run in
    # ascending order, which a GPU does not promise. The descending and random schedules
    # run the blocks in other orders, so the chained sums come out wrong (NaN: unwritten).
    x = rng.standard_normal(16).astype(np.float32)

    def chained(sched):
        out = cuda_emu.empty(16)
        with schedule(sched, seed=11):
            emu.selftest_prefix_sums(out, cuda_emu.asarray(x), True)
        return np.allclose(out.get(), np.cumsum(x), rtol=1e-5, atol=1e-5)

    exposed = [s for s in SCHEDULES if not chained(s)]
    assert exposed == ["descending", "random"], exposed


def test_two_blocks_writing_one_element_are_caught(engine):
    # Both blocks of the launch add to out[t] with a plain read-modify-write: run one after
    # the other the sums come out right, but on a GPU the blocks race. The one-writer check
    # names both blocks; the atomicAdd variant passes.
    # (on by default; the ThreadSanitizer run of CI turns it off with the environment)
    assert cuda_emu._cuda_emu.check_writers() == (os.environ.get("FASTLAYERS_EMU_CHECK_WRITERS", "1") != "0")
    previous = cuda_emu._cuda_emu.check_writers()
    out = cuda_emu.zeros(32)
    with cuda_emu.check_writers(True):
        # (blocks run in ascending order here, the reverse under "descending": either pair)
        with pytest.raises(RuntimeError, match=r"two_writers.*blocks \((0|1),0,0\) and \((1|0),0,0\) both wrote "
                                               r"element 0 \(4 bytes at offset 0\).*without atomics"):
            emu.selftest_two_writers(out, False)
        out = cuda_emu.zeros(32)
        emu.selftest_two_writers(out, True)
        np.testing.assert_array_equal(out.get(), np.full(32, 3.0))
    # with the check off the race goes unseen: the check is what catches it
    out = cuda_emu.zeros(32)
    with cuda_emu.check_writers(False):
        emu.selftest_two_writers(out, False)
    np.testing.assert_array_equal(out.get(), np.full(32, 3.0))
    assert cuda_emu._cuda_emu.check_writers() == previous


def test_missing_bounds_check_is_caught():
    """A write past the end of an allocation: the emulator's redzone check names the
    allocation and kernel; in the AddressSanitizer build the write hits the poisoned
    redzone and ASan reports it (in a child process, since ASan ends it)."""
    if ASAN:
        r = _run_child(
            """
            import numpy as np
            from fastlayers import _cuda_emu as emu, cuda_emu
            x = cuda_emu.asarray(np.ones(100, np.float32)); out = cuda_emu.empty(100)
            emu.selftest_bounded_copy(out, x, 64, False)
            """
        )
        assert r.returncode != 0
        assert "AddressSanitizer" in r.stderr and "bounded_copy_kernel" in r.stderr, r.stderr[-3000:]
        return
    x = cuda_emu.asarray(np.ones(100, np.float32))
    out = cuda_emu.empty(100)
    with pytest.raises(RuntimeError) as e:
        emu.selftest_bounded_copy(out, x, 64, False)
    msg = str(e.value)
    assert "bounded_copy (n=100, block=64): cudaErrorLaunchFailure" in msg
    assert "out-of-bounds write past the end of an allocation of 400 bytes" in msg
    assert "detected after kernel bounded_copy_kernel" in msg
    # The redzone is repaired: the next correct launch succeeds.
    emu.selftest_bounded_copy(out, x, 64, True)


@pytest.mark.parametrize("sched", SCHEDULES)
def test_full_mask_in_partial_warp_is_caught(sched, engine):
    with schedule(sched):
        with pytest.raises(RuntimeError) as e:
            emu.selftest_warp_sum(cuda_emu.empty(2), cuda_emu.asarray(np.ones(48, np.float32)), True)
    msg = str(e.value)
    assert "kernel warp_sum_kernel, block (0,0,0), thread (" in msg
    assert "__shfl_down_sync (selftest.cu:" in msg
    assert "the mask 0xffffffff names lanes 16..31, which do not exist: warp 1 has only 16 lanes" in msg


@pytest.mark.parametrize("sched", SCHEDULES)
def test_barrier_in_divergent_branch_is_caught(sched, engine):
    with schedule(sched, seed=5):
        with pytest.raises(RuntimeError) as e:
            emu.selftest_barrier_in_if(cuda_emu.empty(32), True)
    msg = str(e.value)
    assert "kernel barrier_in_if_kernel, block (0,0,0), thread (" in msg
    # Which message depends on who gets there first: a thread exits while others wait at
    # the barrier, or a thread reaches the barrier after others exited.
    assert ("thread exited while" in msg and "wait at __syncthreads (selftest.cu:" in msg) or (
        "reached after" in msg and "exited" in msg
    ), msg


def test_barriers_at_different_places_are_caught(engine):
    with pytest.raises(RuntimeError, match=r"kernel two_barriers_kernel, block \(0,0,0\), thread \(\d,0,0\): "
                       r"__syncthreads reached from different places: this thread at selftest.cu:\d+, "
                       r"thread \(\d,0,0\) waits at selftest.cu:\d+"):
        emu.selftest_two_barriers(cuda_emu.empty(8), True)


def test_deadlock_is_caught(engine):
    with pytest.raises(RuntimeError) as e:
        emu.selftest_warp_then_barrier(cuda_emu.empty(32), True)
    msg = str(e.value)
    if "deadlock" in msg:
        assert "16 thread(s) at __syncwarp(mask 0xffffffff) (selftest.cu:" in msg
        assert "16 thread(s) at __syncthreads (selftest.cu:" in msg
    else:  # threads engine: the barrier may be reached first by lanes 16..31
        assert "__syncwarp" in msg, msg


def test_host_pointer_is_rejected(engine):
    with pytest.raises(RuntimeError) as e:
        emu.selftest_fill_ones(cuda_emu.empty(32), True)
    msg = str(e.value)
    assert "cudaErrorInvalidDevicePointer" in msg
    assert "launch of kernel fill_ones_kernel" in msg and "argument 1 is the pointer 0x" in msg
    assert "not inside any live device allocation" in msg


def test_freed_and_out_of_range_pointers_are_rejected():
    p = emu.malloc(64)
    emu.selftest_pointer(p, 16)
    emu.selftest_pointer(p + 32, 8)  # inside: fine
    with pytest.raises(RuntimeError, match=r"argument 1 is the pointer 0x[0-9a-f]+ \(36 bytes past the end"):
        emu.selftest_pointer(p + 100, 1)
    emu.free(p)
    with pytest.raises(RuntimeError, match="not inside any live device allocation"):
        emu.selftest_pointer(p, 16)


@pytest.mark.parametrize(
    "grid, block, shmem, reason",
    [
        ((1, 1, 1), (1025, 1, 1), 0, "a block must have 1..1024 threads, this one has 1025"),
        ((1, 1, 1), (32, 32, 2), 0, "a block must have 1..1024 threads, this one has 2048"),
        ((1, 1, 1), (0, 1, 1), 0, "a block must have 1..1024 threads, this one has 0"),
        ((1, 1, 1), (1, 1, 65), 0, r"block dimensions must be at most \(1024, 1024, 64\)"),
        ((0, 1, 1), (32, 1, 1), 0, "grid dimensions must be in"),
        ((1, 65536, 1), (32, 1, 1), 0, "grid dimensions must be in"),
        ((1, 1, 1), (32, 1, 1), 48 * 1024 + 4, "dynamic shared memory is limited to 49152 bytes"),
    ],
)
def test_invalid_launch_configuration(grid, block, shmem, reason):
    out = cuda_emu.empty(1024)
    with pytest.raises(RuntimeError, match="cudaErrorInvalidConfiguration") as e:
        emu.selftest_launch_config(out, grid, block, shmem)
    assert "launch of kernel config_kernel" in str(e.value)
    assert e.match(reason)
    assert np.isnan(out.get()).all()  # the kernel did not run


def test_valid_3d_configuration_runs():
    out = cuda_emu.empty(4 * 2 * 3)
    emu.selftest_launch_config(out, (2, 2, 1), (4, 2, 3), 48 * 1024)
    np.testing.assert_array_equal(out.get(), np.ones(24))


def test_errors_do_not_leak_into_later_launches():
    with pytest.raises(RuntimeError):
        emu.selftest_warp_sum(cuda_emu.empty(2), cuda_emu.asarray(np.ones(48, np.float32)), True)
    out = cuda_emu.empty(32)
    emu.selftest_fill_ones(out, False)
    np.testing.assert_array_equal(out.get(), np.ones(32))
