namespace Compiled.Nets.Runtime.Tests.Memory;

/// <summary>The pool's contract, step by step: one workspace for a lone caller, more for concurrent ones, training alone.</summary>
public class WorkspacePoolTests
{
    private sealed class Ws(int capacity, bool training) : IWorkspace
    {
        public int Capacity { get; } = capacity;
        public bool ForTraining { get; } = training;
        public bool Disposed;
        public void Dispose() => Disposed = true;
    }

    private static int s_created;
    private static WorkspacePool<Ws> Pool() => new("Net", (c, t) => { Interlocked.Increment(ref s_created); return new Ws(c, t); });

    [Fact]
    public void ALoneCaller_ReusesOneWorkspace_ForTrainingAndInference()
    {
        using var pool = Pool();
        var a = pool.RentTraining(8, 64, "TrainStep");
        pool.ReturnTraining(a);
        var b = pool.RentInference(8, 64, "Forward");
        Assert.Same(a, b);
        pool.ReturnInference(b);
        Assert.Equal(64, a.Capacity);
    }

    [Fact]
    public void ConcurrentInference_GetsSeparateWorkspaces()
    {
        using var pool = Pool();
        var a = pool.RentInference(4, 4, "Forward");
        var b = pool.RentInference(4, 4, "Forward");
        Assert.NotSame(a, b);
        Assert.False(b.ForTraining);
        pool.ReturnInference(a); pool.ReturnInference(b);
    }

    [Fact]
    public void TrainingExcludesEverythingElse_WithMessagesThatSayWhy()
    {
        using var pool = Pool();
        var t = pool.RentTraining(4, 4, "TrainStep");
        Assert.Contains("Net.TrainStep: another TrainStep is running on it", Assert.Throws<InvalidOperationException>(() => pool.RentTraining(4, 4, "TrainStep")).Message);
        Assert.Contains("Net.Forward: a TrainStep is running on it on another thread", Assert.Throws<InvalidOperationException>(() => pool.RentInference(4, 4, "Forward")).Message);
        pool.ReturnTraining(t);
        var i = pool.RentInference(4, 4, "Forward");
        Assert.Contains("inference is running on it", Assert.Throws<InvalidOperationException>(() => pool.RentTraining(4, 4, "TrainStep")).Message);
        pool.ReturnInference(i);
        pool.ReturnTraining(pool.RentTraining(4, 4, "TrainStep")); // free again
    }

    [Fact]
    public void ALargerBatch_ReplacesASmallWorkspace_AndDisposeFreesWhatComesBack()
    {
        var pool = Pool();
        var small = pool.RentInference(2, 2, "Forward");
        pool.ReturnInference(small);
        var big = pool.RentInference(16, 2, "Forward");
        Assert.True(small.Disposed);
        Assert.Equal(16, big.Capacity);
        pool.Dispose();
        pool.ReturnInference(big);
        Assert.True(big.Disposed);
        Assert.Throws<InvalidOperationException>(() => pool.RentInference(1, 1, "Forward"));
    }
}
