using Compiled.Nets.Training;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>
/// The trainable tensors of a twin's flat parameter buffers as runs — stretches of adjacent trainable tensors that agree
/// on weight decay — walked end to end by one launch, so a device optimizer's step (and a gradient norm) is one launch
/// for the whole network, as PyTorch's fused and multi-tensor optimizers are, instead of one per tensor (a BERT layer
/// has 16). The table is rebuilt on the host each step without allocating and uploaded only when freezing or the
/// decay predicate has changed it.
/// </summary>
internal sealed class ParameterRuns : IDisposable
{
    /// <summary>Ints per run on the device: its first element in the walk, its offset in the flat buffers, 1 if it decays.</summary>
    internal const int Fields = 3;

    private int[] _table = new int[Fields * 8], _next = new int[Fields * 8];
    private int _building, _walked, _end = -1, _decays = -1;
    private MemoryBuffer1D<int, Stride1D.Dense>? _device;

    /// <summary>Runs in the table.</summary>
    public int Count { get; private set; }

    /// <summary>Elements the runs hold together (the length of a walk over them).</summary>
    public int Elements { get; private set; }

    /// <summary>The table on the device (<see cref="Fields"/> ints per run).</summary>
    public ArrayView<int> View => _device?.View ?? throw new InvalidOperationException("The parameter runs have not been uploaded.");

    /// <summary>Sets the runs of <paramref name="parameters"/> that train, each tensor's decay as <paramref name="decays"/> says.</summary>
    public void Set(GpuDevice device, IReadOnlyList<ParameterInfo> parameters, Func<ParameterInfo, bool> decays)
    {
        Begin();
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (p.RequiresGrad && p.Length > 0) Add(p.Offset, p.Length, decays(p));
        }
        End(device);
    }

    /// <summary>Starts a new table (then <see cref="Add"/> in ascending offsets, then <see cref="End"/>).</summary>
    internal void Begin() { _building = 0; _walked = 0; _end = -1; _decays = -1; }

    /// <summary>Adds <paramref name="length"/> elements at <paramref name="offset"/>, joining the last run where they follow it and agree on decay.</summary>
    internal void Add(int offset, int length, bool decays)
    {
        int d = decays ? 1 : 0;
        if (_building > 0 && offset == _end && d == _decays)
        {
            _end += length; _walked += length;
            return;
        }
        if (_next.Length < Fields * (_building + 1)) Array.Resize(ref _next, 2 * _next.Length);
        int r = Fields * _building++;
        _next[r] = _walked; _next[r + 1] = offset; _next[r + 2] = d;
        _end = offset + length; _decays = d; _walked = checked(_walked + length);
    }

    /// <summary>Ends the table: uploads it when it differs from the one on the device.</summary>
    internal void End(GpuDevice device)
    {
        int ints = Fields * _building;
        if (_device is not null && _building == Count && _walked == Elements && _next.AsSpan(0, ints).SequenceEqual(_table.AsSpan(0, ints))) return;
        (_table, _next) = (_next, _table);
        Count = _building; Elements = _walked;
        if (_device is null || _device.Length < ints)
        {
            _device?.Dispose();
            _device = device.AllocateInts(Math.Max(ints, _table.Length));
        }
        if (ints > 0) DeviceNetwork.Upload<int>(_table.AsSpan(0, ints), _device.View);
    }

    /// <summary>The run holding element <paramref name="i"/> of the walk (a binary search over the runs' starts).</summary>
    internal static int RunOf(ArrayView<int> runs, int count, int i)
    {
        int lo = 0, hi = count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (runs[Fields * mid] <= i) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Where element <paramref name="i"/> of the walk, in run <paramref name="run"/>, lies in the flat buffers.</summary>
    internal static int Place(ArrayView<int> runs, int run, int i) => runs[Fields * run + 1] + i - runs[Fields * run];

    /// <summary>Whether run <paramref name="run"/> decays.</summary>
    internal static bool Decays(ArrayView<int> runs, int run) => runs[Fields * run + 2] != 0;

    public void Dispose() => _device?.Dispose();
}
