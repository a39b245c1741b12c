namespace Compiled.Nets;

/// <summary>
/// Mode of the eager reference path: inside <see cref="Training"/> dropout is active and BatchNorm uses (and updates)
/// batch statistics; outside it, evaluation mode. Thread-static, like PyTorch's grad mode.
/// </summary>
public static class Eager
{
    [ThreadStatic] private static int t_trainingDepth;
    [ThreadStatic] private static Rng? t_rng;

    /// <summary>True inside a <see cref="Training"/> scope on this thread.</summary>
    public static bool IsTraining => t_trainingDepth > 0;

    /// <summary>The generator dropout draws from on this thread.</summary>
    public static Rng Rng => t_rng ??= new Rng(0x5EED);

    /// <summary>Reseeds this thread's dropout generator.</summary>
    public static void Seed(ulong seed) => t_rng = new Rng(seed);

    /// <summary>Enters training mode until the returned scope is disposed.</summary>
    public static IDisposable Training()
    {
        t_trainingDepth++;
        return new Scope();
    }

    private sealed class Scope : IDisposable
    {
        private bool _disposed;
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            t_trainingDepth--;
        }
    }
}
