namespace Compiled.Nets;

/// <summary>A generated network's working memory for one call: activations, scratch and (for training) gradients.</summary>
public interface IWorkspace : IDisposable
{
    /// <summary>The largest batch it holds.</summary>
    int Capacity { get; }
    /// <summary>True when it has the gradient arena a training step needs.</summary>
    bool ForTraining { get; }
}

/// <summary>
/// The workspaces of one network instance, so that many threads can run inference on it at once (each call takes a
/// workspace of its own over the shared, read-only parameters) while a training step keeps the instance to itself.
/// A single caller reuses one workspace for training and inference alike: taking and returning it is two atomic
/// exchanges and allocates nothing. Concurrent callers get further workspaces, kept for reuse up to
/// <see cref="IdleLimit"/>; a call that finds none idle creates one (its memory is the price of the concurrency).
/// </summary>
/// <typeparam name="T">The generated workspace type.</typeparam>
public sealed class WorkspacePool<T> : IDisposable where T : class, IWorkspace
{
    private readonly T?[] _idle;
    private readonly Func<int, bool, T> _create;
    private readonly string _network;
    private int _inference, _training, _disposed;

    /// <summary>Creates a pool.</summary>
    /// <param name="network">The network's name, for messages.</param>
    /// <param name="create">Creates a workspace for (capacity, forTraining).</param>
    public WorkspacePool(string network, Func<int, bool, T> create)
    {
        _network = network;
        _create = create;
        _idle = new T?[IdleLimit];
    }

    /// <summary>Workspaces kept idle for reuse (more concurrent callers create and free their own).</summary>
    public static int IdleLimit { get; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>
    /// A workspace for an inference call (Forward, EvaluateLoss) of <paramref name="batch"/> samples; give it back
    /// with <see cref="ReturnInference"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">While a training step runs on this instance, or after disposal.</exception>
    public T RentInference(int batch, int defaultCapacity, string method)
    {
        Interlocked.Increment(ref _inference);
        if (Volatile.Read(ref _training) != 0 || Volatile.Read(ref _disposed) != 0)
        {
            Interlocked.Decrement(ref _inference);
            throw Busy(method, Volatile.Read(ref _disposed) != 0 ? "it has been disposed" : "a TrainStep is running on it on another thread");
        }
        try { return Take(batch, defaultCapacity, training: false); }
        catch { Interlocked.Decrement(ref _inference); throw; }
    }

    /// <summary>Gives back a workspace taken by <see cref="RentInference"/>.</summary>
    public void ReturnInference(T workspace)
    {
        Put(workspace);
        Interlocked.Decrement(ref _inference);
    }

    /// <summary>The workspace of a training step; the instance is the step's alone until <see cref="ReturnTraining"/>.</summary>
    /// <exception cref="InvalidOperationException">When another call (a TrainStep or inference) runs on this instance, or after disposal.</exception>
    public T RentTraining(int batch, int defaultCapacity, string method)
    {
        if (Interlocked.CompareExchange(ref _training, 1, 0) != 0)
            throw Busy(method, "another TrainStep is running on it");
        // Read after the flag is raised: an inference call that started before sees the flag or is counted here.
        if (Volatile.Read(ref _inference) != 0 || Volatile.Read(ref _disposed) != 0)
        {
            Volatile.Write(ref _training, 0);
            throw Busy(method, Volatile.Read(ref _disposed) != 0 ? "it has been disposed" : "inference is running on it on another thread");
        }
        try { return Take(batch, defaultCapacity, training: true); }
        catch { Volatile.Write(ref _training, 0); throw; }
    }

    /// <summary>Gives back the workspace of a training step.</summary>
    public void ReturnTraining(T workspace)
    {
        Put(workspace);
        Volatile.Write(ref _training, 0);
    }

    private InvalidOperationException Busy(string method, string why) => new(
        $"{_network}.{method}: {why}. One instance serves Forward and EvaluateLoss from any number of threads at once, " +
        "but TrainStep needs it to itself: train on one thread, or give each training thread its own instance.");

    private T Take(int batch, int defaultCapacity, bool training)
    {
        for (int i = 0; i < _idle.Length; i++)
        {
            var ws = Interlocked.Exchange(ref _idle[i], null);
            if (ws is null) continue;
            if (ws.Capacity >= batch && (ws.ForTraining || !training)) return ws;
            // Too small: a larger one replaces it. Without gradients: keep it for inference (or free it if its slot is taken).
            if (ws.Capacity < batch || Interlocked.CompareExchange(ref _idle[i], ws, null) is not null) ws.Dispose();
        }
        return _create(WorkspaceCapacity.For(batch, defaultCapacity, training), training);
    }

    private void Put(T ws)
    {
        if (Volatile.Read(ref _disposed) == 0)
            for (int i = 0; i < _idle.Length; i++)
                if (Interlocked.CompareExchange(ref _idle[i], ws, null) is null)
                {
                    // Disposed meanwhile: take it back out and free it (whoever swaps it out first frees it).
                    if (Volatile.Read(ref _disposed) != 0 && Interlocked.Exchange(ref _idle[i], null) is { } back) back.Dispose();
                    return;
                }
        ws.Dispose();
    }

    /// <summary>Frees the idle workspaces; workspaces in use are freed when their calls return them.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        for (int i = 0; i < _idle.Length; i++) Interlocked.Exchange(ref _idle[i], null)?.Dispose();
    }
}

/// <summary>How many samples of room the workspace pool gives a call (also what the generated WorkspaceBytes counts).</summary>
public static class WorkspaceCapacity
{
    /// <summary>Training keeps room for the usual batch (<paramref name="defaultCapacity"/>) from the start; inference
    /// takes what the request needs, rounded up to a power of two, so a growing server batch reallocates a few times at
    /// most and a batch-1 server does not pay for an arena of 64 samples.</summary>
    public static int For(int batch, int defaultCapacity, bool training) => training
        ? Math.Max(batch, defaultCapacity)
        : Math.Max(batch, (int)Math.Min(defaultCapacity, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)batch)));
}
