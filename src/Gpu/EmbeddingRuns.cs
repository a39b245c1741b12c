using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>
/// A batch's token ids grouped by id on the device, for an embedding's backward: each distinct id with its positions in
/// ascending order, so one group per id sums its gradient rows in position order — the same sum every run, without
/// atomics, in time linear in the ids (PyTorch sorts the ids on the device for the same reason; here they are grouped
/// on the host, where every batch of ids comes from, by a counting sort).
/// </summary>
public readonly struct EmbeddingRuns
{
    private readonly ArrayView<int> _layout;

    internal EmbeddingRuns(ArrayView<int> layout, int positions, int count)
    {
        _layout = layout; Positions = positions; Count = count;
    }

    /// <summary>The ids grouped (positions of the batch).</summary>
    public int Positions { get; }

    /// <summary>Distinct ids among them.</summary>
    public int Count { get; }

    /// <summary>The positions, id by id, each id's in ascending order.</summary>
    internal ArrayView<int> Order => _layout.SubView(0, Positions);

    /// <summary>Where id run r's positions begin in <see cref="Order"/> (Count + 1 entries).</summary>
    internal ArrayView<int> Starts => _layout.SubView(Positions, Count + 1);

    /// <summary>Run r's id.</summary>
    internal ArrayView<int> Ids => _layout.SubView(Positions + Count + 1, Count);

    /// <summary>Ints of the device layout for <paramref name="positions"/> ids: positions, up to positions + 1 starts, up to positions ids.</summary>
    internal static long LayoutLength(int positions) => 3L * positions + 1;
}

/// <summary>
/// A copy of ids as they were uploaded, and their <see cref="EmbeddingRuns"/>, built on first use after each upload (so
/// inference and frozen tables never pay for them) and uploaded in one copy.
/// </summary>
internal sealed class TokenRunsBuilder : IDisposable
{
    private int[] _ids = [], _counts = [], _layout = [];
    private int _length;
    private bool _current;
    private EmbeddingRuns _runs;
    private MemoryBuffer1D<int, Stride1D.Dense>? _buffer;

    /// <summary>The ids of the next batch (non-negative: checked against their table before they were uploaded).</summary>
    public void Set(ReadOnlySpan<int> ids)
    {
        if (_ids.Length < ids.Length) _ids = new int[ids.Length];
        ids.CopyTo(_ids);
        _length = ids.Length;
        _current = false;
    }

    /// <summary>The next batch's ids as <paramref name="count"/> ids already on the device, read back.</summary>
    public void SetFromDevice(ArrayView<int> ids, int count)
    {
        if (_ids.Length < count) _ids = new int[count];
        DeviceNetwork.Download(ids, _ids.AsSpan(0, count));
        _length = count;
        _current = false;
    }

    /// <summary>The runs of the ids last set, on <paramref name="device"/>.</summary>
    public EmbeddingRuns Runs(GpuDevice device)
    {
        if (_current) return _runs;
        long needed = EmbeddingRuns.LayoutLength(_length);
        if (_layout.Length < needed) _layout = new int[needed];
        int count = Group(_ids.AsSpan(0, _length), _layout, ref _counts);
        if (_buffer is null || _buffer.Length < needed)
        {
            _buffer?.Dispose();
            _buffer = device.AllocateInts(needed);
        }
        long used = _length + 2L * count + 1;
        DeviceNetwork.Upload<int>(_layout.AsSpan(0, (int)used), _buffer.View);
        _runs = new EmbeddingRuns(_buffer.View.SubView(0, used), _length, count);
        _current = true;
        return _runs;
    }

    /// <summary>
    /// A counting sort of <paramref name="ids"/>' positions by id into <paramref name="layout"/> ([order | starts |
    /// run ids], as <see cref="EmbeddingRuns"/> reads it); returns the number of distinct ids. Stable, so each id's
    /// positions stay in ascending order. <paramref name="counts"/> is reused scratch, one entry per id up to the largest.
    /// </summary>
    internal static int Group(ReadOnlySpan<int> ids, Span<int> layout, ref int[] counts)
    {
        int n = ids.Length, largest = -1;
        foreach (int id in ids)
        {
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(ids), id, "Embedding: a negative token id.");
            if (id > largest) largest = id;
        }
        if (counts.Length < largest + 1) counts = new int[largest + 1];
        var count = counts.AsSpan(0, largest + 1);
        count.Clear();
        foreach (int id in ids) count[id]++;
        // Runs in id order: each id's start in the order, then the count turned into the next free slot.
        int runs = 0, at = 0;
        for (int id = 0; id <= largest; id++) if (count[id] > 0) runs++;
        var order = layout[..n];
        var starts = layout.Slice(n, runs + 1);
        var runIds = layout.Slice(n + runs + 1, runs);
        int r = 0;
        for (int id = 0; id <= largest; id++)
        {
            int c = count[id];
            if (c == 0) continue;
            starts[r] = at; runIds[r] = id; r++;
            count[id] = at;
            at += c;
        }
        starts[runs] = n;
        for (int p = 0; p < n; p++) order[count[ids[p]]++] = p;
        return runs;
    }

    public void Dispose() => _buffer?.Dispose();
}
