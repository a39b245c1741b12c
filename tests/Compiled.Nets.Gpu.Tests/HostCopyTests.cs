namespace Compiled.Nets.Gpu.Tests;

/// <summary>Copies between host arrays and the device while the garbage collector moves objects: ILGPU's copies by
/// reference take the address as it is, so the host side must stay pinned for the whole copy.</summary>
public sealed class HostCopyTests(DeviceFixture f) : IClassFixture<DeviceFixture>
{
    [Fact]
    public void Uploads_and_downloads_of_movable_arrays_survive_compacting_collections()
    {
        const int n = 4096;
        using var buffer = f.Device.Allocate(n);
        int wrong = 0, copies = 0;
        using var stop = new CancellationTokenSource();
        // Another thread compacts generation 0 every millisecond, as a busy process's allocations may at any moment.
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested) { GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: true); Thread.Sleep(1); }
        });
        collector.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (clock.Elapsed < TimeSpan.FromSeconds(2))
            {
                // Fresh small arrays live in generation 0: the first collection moves them.
                var up = new float[n];
                for (int i = 0; i < n; i++) up[i] = copies + i;
                DeviceNetwork.Upload<float>(up, buffer.View);
                var down = new float[n];
                DeviceNetwork.Download(buffer.View, down);
                for (int i = 0; i < n; i++)
                    if (down[i] != copies + i) { wrong++; break; }
                copies++;
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.True(copies > 20, $"only {copies} round trips ran");
        Assert.Equal(0, wrong);
    }
}
