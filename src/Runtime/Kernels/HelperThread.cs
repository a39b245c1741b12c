namespace Compiled.Nets.Kernels;

/// <summary>
/// Runs a piece of work as two halves: half 0 on the calling thread, half 1 on one persistent worker thread. No
/// allocation per call (state travels as a pointer to the caller's stack). When the worker is busy — a nested call
/// (a GEMM inside a parallel convolution) or another thread's work — both halves run on the caller, in order, so
/// results never depend on who ran what.
/// </summary>
/// <remarks>
/// The worker waits on a semaphore, which spins briefly and then sleeps. Waking a sleeping worker costs tens of
/// microseconds, but keeping it polling instead made requests after idle time slower, not faster (a vCPU that has
/// polled for a while and then sleeps comes back late), and did not speed up training: so it sleeps.
/// </remarks>
internal static unsafe class HelperThread
{
    private static readonly object s_gate = new();
    private static readonly SemaphoreSlim s_start = new(0), s_done = new(0);
    private static delegate*<void*, int, void> s_work;
    private static void* s_state;
    private static Exception? s_error;
    private static bool s_busy;

    /// <summary>True when a second core exists to use.</summary>
    public static bool Available { get; } = Environment.ProcessorCount > 1;

    static HelperThread()
    {
        if (!Available) return;
        var t = new Thread(Loop) { IsBackground = true, Name = "Compiled.Nets worker" };
        t.Start();
    }

    /// <summary>Calls <paramref name="work"/>(state, 0) and (state, 1), in parallel when the worker is free.</summary>
    public static void Run(delegate*<void*, int, void> work, void* state)
    {
        bool parallel = false;
        if (Available)
            lock (s_gate)
                if (!s_busy) { s_busy = true; parallel = true; }
        if (!parallel)
        {
            work(state, 0);
            work(state, 1);
            return;
        }
        s_work = work; s_state = state; s_error = null;
        s_start.Release();
        try { work(state, 0); }
        finally
        {
            s_done.Wait();
            lock (s_gate) s_busy = false;
        }
        if (s_error is { } e) throw new InvalidOperationException("The worker half failed: " + e.Message, e);
    }

    /// <summary>
    /// Calls <paramref name="body"/>(state, half, begin, end) over [0, count) in blocks of <paramref name="block"/>, each
    /// core taking the next block when it finishes one, so neither waits for the other at the end when the two cores
    /// run at different speeds (virtual CPUs often do). Only for blocks whose results do not depend on which core ran
    /// them (disjoint outputs; <c>half</c> picks per-core scratch).
    /// </summary>
    public static void ForBlocks(delegate*<void*, int, int, int, void> body, void* state, int count, int block)
    {
        var b = new Blocks { Body = body, State = state, Count = count, Block = block };
        Run(&BlocksHalf, &b);
    }

    private struct Blocks
    {
        public delegate*<void*, int, int, int, void> Body;
        public void* State;
        public int Count, Block, Next;
    }

    private static void BlocksHalf(void* state, int half)
    {
        ref var b = ref *(Blocks*)state;
        for (int begin; (begin = Interlocked.Add(ref b.Next, b.Block) - b.Block) < b.Count;)
            b.Body(b.State, half, begin, Math.Min(begin + b.Block, b.Count));
    }

    private static void Loop()
    {
        while (true)
        {
            s_start.Wait();
            try { s_work(s_state, 1); }
            catch (Exception e) { s_error = e; }
            finally { s_done.Release(); }
        }
    }
}
