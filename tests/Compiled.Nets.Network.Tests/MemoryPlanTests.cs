using Compiled.Nets;
using Compiled.Nets.Training;

namespace Compiled.Nets.Network.Tests;

/// <summary>Measurements of the process's aligned memory: alone, so no other test's buffers come and go meanwhile.</summary>
[CollectionDefinition(nameof(MemoryMeasurements), DisableParallelization = true)]
public sealed class MemoryMeasurements;

/// <summary>
/// The memory figures the generator states at build time against what a training step really allocates: the aligned
/// buffers' peak (parameters, buffers, gradients, the workspace's arenas) and the managed arrays (the optimizer's
/// moments, the max-pool indices) allocated on this thread.
/// </summary>
[Collection(nameof(MemoryMeasurements))]
public class MemoryPlanTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private void Measure<TNet>(Func<TNet> create, Func<TNet, int, float> step, Func<TNet, long> cacheBytes, int batch, long parameterBytes, long bufferBytes,
        long gradientBytes, long adamBytes, long workspaceBytes, long trainingBytes) where TNet : IDisposable
    {
        // The kernels' per-thread buffers (GEMM packing, partial sums) belong to the process, not the network: a first
        // network's step reserves them, then the measured one starts from there.
        using (var warm = create()) step(warm, batch);
        GC.Collect(); GC.WaitForPendingFinalizers();
        long native = AlignedBuffer.LiveBytes, managed = GC.GetAllocatedBytesForCurrentThread();
        AlignedBuffer.ResetPeakBytes();
        using (var net = create())
        {
            // The store: parameters and buffers (a store without buffers still holds a one-float block).
            Assert.Equal(parameterBytes + Math.Max(bufferBytes, 4), AlignedBuffer.LiveBytes - native);
            float loss = step(net, batch);
            Assert.True(float.IsFinite(loss));
            output.WriteLine($"{typeof(TNet).Name}: predicted {trainingBytes - adamBytes:N0} bytes + kernel caches {cacheBytes(net):N0}; aligned peak {AlignedBuffer.PeakBytes - native:N0}, managed {GC.GetAllocatedBytesForCurrentThread() - managed:N0}");
            long nativePeak = AlignedBuffer.PeakBytes - native, managedAllocated = GC.GetAllocatedBytesForCurrentThread() - managed;
            // Predicted: everything but the optimizer (the step runs without one), the store's empty-buffer block aside,
            // and the convolutions' Winograd filter caches, which the instance reports once filled.
            long predicted = trainingBytes - adamBytes + (bufferBytes == 0 ? 4 : 0) + cacheBytes(net);
            long measured = nativePeak + managedAllocated;
            // The managed side also holds what the instance's own objects take (layer handles, parameter table,
            // delegates): a few KiB, next to arenas of MiB.
            Assert.True(measured >= predicted && measured - predicted < 256 * 1024,
                $"predicted {predicted:N0} bytes (store, gradients {gradientBytes:N0}, workspace {workspaceBytes:N0}); measured {measured:N0} (aligned peak {nativePeak:N0}, managed {managedAllocated:N0})");
        }
        Assert.Equal(native, AlignedBuffer.LiveBytes); // disposing frees it all
    }

    [Fact]
    public void ConvNet_ATrainingStep_AllocatesWhatTheBuildSaid()
    {
        const int batch = 16; // the training workspace keeps room for MaxBatch = 64 all the same
        var x = CompiledVsEagerTests.RandomData(batch * ConvNet.InputFeatures, 1);
        var labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
        Measure(() => new ConvNet(seed: 1), (n, b) => n.TrainStep(x, labels, b), n => n.KernelCacheBytes, batch, ConvNet.ParameterBytes, ConvNet.BufferBytes,
            ConvNet.GradientBytes, ConvNet.OptimizerStateBytes(OptimizerKind.AdamW), ConvNet.WorkspaceBytes(batch), ConvNet.TrainingBytes(batch));
        Assert.Equal(ConvNet.WorkspaceBytes(64), ConvNet.WorkspaceBytes(batch));
        Assert.True(ConvNet.WorkspaceBytes(1, training: false) < ConvNet.WorkspaceBytes(64, training: false));
    }

    [Fact]
    public void MiniBert_WithBuffersOfASequence_AllocatesWhatTheBuildSaid()
    {
        const int batch = 3, T = 7;
        var ids = Enumerable.Range(0, batch * T).Select(i => 1 + i % 40).ToArray();
        int[] labels = [0, 1, 2];
        Measure(() => new MiniBert(seed: 2), (n, b) => n.TrainStep(ids, labels, default, b, T), n => n.KernelCacheBytes, batch, MiniBert.ParameterBytes, MiniBert.BufferBytes,
            MiniBert.GradientBytes, MiniBert.OptimizerStateBytes(OptimizerKind.AdamW), MiniBert.WorkspaceBytes(batch), MiniBert.TrainingBytes(batch));
    }

    [Fact]
    public void TheOptimizersState_IsWhatTheBuildSaid()
    {
        using var net = new BnNet(seed: 3);
        Assert.Equal(BnNet.OptimizerStateBytes(OptimizerKind.AdamW), new AdamW(net.Parameters, 1e-3f).StateBytes);
        Assert.Equal(BnNet.OptimizerStateBytes(OptimizerKind.Adam), new Adam(net.Parameters, 1e-3f).StateBytes);
        Assert.Equal(BnNet.OptimizerStateBytes(OptimizerKind.SgdMomentum), new Sgd(net.Parameters, 0.1f, momentum: 0.9f).StateBytes);
        Assert.Equal(0, new Sgd(net.Parameters, 0.1f).StateBytes);
        Assert.True(BnNet.BufferBytes > 0);
        Assert.Contains("Memory to train at batch", BnNet.Summary());
    }
}
