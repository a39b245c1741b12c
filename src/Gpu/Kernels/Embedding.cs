using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// nn.Embedding on the device: a gather forward; backward gives each distinct id a group, which sums the gradient rows of
// all its positions in position order into the id's row (EmbeddingRuns: the ids grouped by a counting sort on the host)
// — repeated ids meet in one row without atomics, so the sum is the same every run, and the work is linear in the ids.
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _embedding;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>? _embeddingBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int>? _oneHot;

    /// <summary>y[n, :] = the one-hot row of ids[n] over <paramref name="classes"/> (F.one_hot as floats; ids checked on the host).</summary>
    public void OneHot(ArrayView<float> y, ArrayView<int> ids, int count, int classes)
    {
        Need(y, (long)count * classes, nameof(y));
        if (ids.Length < count) throw new ArgumentException($"OneHot: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        _oneHot ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int>(OneHotKernel);
        Launched(); _oneHot(checked(count * classes), y, ids, classes);
    }

    private static void OneHotKernel(Index1D index, ArrayView<float> y, ArrayView<int> ids, int classes)
    {
        int i = index;
        y[i] = ids[i / classes] == i % classes ? 1f : 0f;
    }

    /// <summary>y[n, :] = table[ids[n], :] for <paramref name="count"/> ids (checked on the host before they came up).</summary>
    public void EmbeddingForward(ArrayView<float> y, ArrayView<int> ids, ArrayView<float> table, int count, int dim)
    {
        Need(y, (long)count * dim, nameof(y));
        if (ids.Length < count) throw new ArgumentException($"Embedding: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        _embedding ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingKernel);
        Launched(); _embedding(checked(count * dim), y, ids, table, dim);
    }

    /// <summary>dtable[ids[n], :] += dy[n, :], leaving out the row <paramref name="paddingIdx"/> (−1: none), as
    /// nn.Embedding(padding_idx=…) keeps it; each row's terms added in position order. The ids are read back and
    /// grouped on the host (a twin groups the ids it uploaded instead: the overload over <see cref="EmbeddingRuns"/>).</summary>
    public void EmbeddingBackward(ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> ids, int count, int dim, int paddingIdx)
    {
        if (ids.Length < count) throw new ArgumentException($"Embedding: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        if (count == 0) return;
        _readBackIds ??= new TokenRunsBuilder();
        _readBackIds.SetFromDevice(ids, count);
        EmbeddingBackward(dtable, dy, _readBackIds.Runs(_device), dim, paddingIdx);
    }

    private TokenRunsBuilder? _readBackIds;

    /// <summary>dtable[id, :] += the sum of dy's rows at the id's positions, in position order, for each id of
    /// <paramref name="runs"/> but <paramref name="paddingIdx"/> (−1: none): one group per distinct id.</summary>
    public void EmbeddingBackward(ArrayView<float> dtable, ArrayView<float> dy, EmbeddingRuns runs, int dim, int paddingIdx)
    {
        Need(dy, (long)runs.Positions * dim, nameof(dy));
        if (runs.Count == 0) return;
        _embeddingBackward ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>(EmbeddingBackwardKernel);
        Launched(); _embeddingBackward(RowConfig(runs.Count, dim), dtable, dy, runs.Order, runs.Starts, runs.Ids, dim, paddingIdx);
    }

    private static void EmbeddingKernel(Index1D index, ArrayView<float> y, ArrayView<int> ids, ArrayView<float> table, int dim)
    {
        int i = index;
        y[i] = table[(long)ids[i / dim] * dim + i % dim];
    }

    /// <summary>Id run Grid.IdxX: its threads sum the rows of the id's positions in order, each thread every
    /// Group.DimX-th value of the row.</summary>
    private static void EmbeddingBackwardKernel(ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> order, ArrayView<int> starts, ArrayView<int> ids,
        int dim, int paddingIdx)
    {
        int r = Grid.IdxX, id = ids[r];
        if (id == paddingIdx) return;
        int first = starts[r], end = starts[r + 1];
        long row = (long)id * dim;
        for (int d = Group.IdxX; d < dim; d += Group.DimX)
        {
            float s = 0f;
            for (int k = first; k < end; k++) s += dy[(long)order[k] * dim + d];
            dtable[row + d] += s;
        }
    }
}
