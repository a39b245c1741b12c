using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>Whole networks: the generated device twin against the CPU path of the same network (itself checked
/// against libtorch), on ILGPU's CPU accelerator: logits, loss and every gradient of a step, AdamW over steps,
/// freezing, launch counts, and the errors at the API boundary.</summary>
public sealed class DeviceNetworkTests(DeviceFixture f) : IClassFixture<DeviceFixture>
{
    private static (float[] X, int[] Y) Batch(int batch, int features, int classes, int seed)
    {
        var x = DeviceFixture.Random(batch * features, seed);
        var y = Enumerable.Range(0, batch).Select(i => (i * 3 + seed) % classes).ToArray();
        return (x, y);
    }

    /// <summary>‖a − e‖∞ ≤ tol·‖e‖∞ + 1e-6 (a tensor's gradients span magnitudes; this compares them at their own scale,
    /// above float noise: a Linear's bias before a batch norm has a gradient of exactly 0, computed as ±1e-7).</summary>
    private static void Relative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, err = 0; int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double d = Math.Abs(expected[i] - actual[i]);
            if (!(d <= err)) { err = d; worst = i; }
        }
        Assert.True(err <= tol * scale + 1e-6, $"{what}: max error {err:g3} at [{worst}] (expected {expected[worst]}, got {actual[worst]}) vs scale {scale:g3}");
    }

    private void OneStepMatches<TNet>(TNet cpu, TNet gpuHost, Func<TNet, DeviceNetwork> toDevice, int batch, int seed) where TNet : IClassifier
    {
        var (x, y) = Batch(batch, cpu.InputSize, cpu.OutputSize, seed);
        using var dev = toDevice(gpuHost);
        var cpuOut = new float[batch * cpu.OutputSize];
        var devOut = new float[cpuOut.Length];
        cpu.Forward(x, batch, cpuOut);
        dev.Forward(x, batch, devOut);
        Relative(cpuOut, devOut, 1e-4, "Forward logits");

        var cpuLogits = new float[cpuOut.Length]; var devLogits = new float[cpuOut.Length];
        float cpuLoss = cpu.TrainStep(x, y, batch, cpuLogits);
        float devLoss = dev.TrainStep(x, y, batch, devLogits);
        Assert.Equal(cpuLoss, devLoss, 1e-4 * (1 + Math.Abs(cpuLoss)));
        Relative(cpuLogits, devLogits, 1e-4, "TrainStep logits");
        dev.CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, gpuHost.Parameters);

        Assert.Equal(cpu.EvaluateLoss(x, y, batch), dev.EvaluateLoss(x, y, batch), 1e-4 * (1 + Math.Abs(cpuLoss)));
    }

    /// <summary>A training step launches what the twin's LaunchesPerTrainStep declares (the emitter counts each op's launches).</summary>
    private void LaunchesAsDeclared(DeviceNetwork dev, IClassifier host, int seed)
    {
        using (dev)
        {
            var (x, y) = Batch(2, host.InputSize, host.OutputSize, seed);
            Assert.Equal(dev.LaunchesPerTrainStep, LaunchesOf(() => dev.TrainStep(x, y, 2)));
        }
    }

    /// <summary>Every parameter's gradient in <paramref name="host"/> (copied back from the device) against the CPU network's.</summary>
    private static void GradientsMatch(ParameterStore cpu, ParameterStore host, string what = "gradient of ")
    {
        foreach (var p in cpu.Parameters)
            Relative(cpu.Gradient(p), host.Gradient(host[p.Name]), 1e-4, what + p.Name);
    }

    /// <summary>The launches of a step taken after one like it (which loaded the kernels and sized the workspace).</summary>
    private long LaunchesOf(Action step)
    {
        step();
        long before = f.Device.LaunchCount;
        step();
        return f.Device.LaunchCount - before;
    }

    [Fact]
    public void The_seed_ConvNet_on_the_device_matches_the_CPU_in_logits_loss_and_every_gradient()
    {
        using var cpu = new ConvNet(seed: 7);
        using var host = new ConvNet(seed: 7);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 1);
    }

    [Fact]
    public void A_residual_network_with_every_fused_activation_matches_the_CPU()
    {
        using var cpu = new ResidualConvNet(seed: 3);
        using var host = new ResidualConvNet(seed: 3);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 5, seed: 2);
    }

    [Fact]
    public void A_BatchNorm_residual_network_matches_the_CPU_and_its_running_statistics_too()
    {
        using var cpu = new BnResNet(seed: 4);
        using var host = new BnResNet(seed: 4);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 6, seed: 3);

        // Two training steps move the running statistics and the batch count alike; evaluation mode then uses them.
        using var cpu2 = new BnResNet(seed: 6);
        using var host2 = new BnResNet(seed: 6);
        using var dev = host2.ToDevice(f.Device);
        var (x, y) = Batch(6, cpu2.InputSize, cpu2.OutputSize, 8);
        for (int i = 0; i < 2; i++) { cpu2.TrainStep(x, y, 6); dev.TrainStep(x, y, 6); }
        dev.CopyParametersToHost();
        foreach (var b in cpu2.Parameters.Buffers)
            Relative(cpu2.Parameters.ReadValue(b), host2.Parameters.ReadValue(host2.Parameters[b.Name]), 1e-4, "buffer " + b.Name);
        var cpuOut = new float[6 * cpu2.OutputSize]; var devOut = new float[cpuOut.Length];
        cpu2.Forward(x, 6, cpuOut); dev.Forward(x, 6, devOut);
        Relative(cpuOut, devOut, 1e-4, "evaluation-mode logits");
    }

    [Fact]
    public void Concatenated_branches_and_average_pooling_match_the_CPU()
    {
        using var cpu = new BranchNet(seed: 9);
        using var host = new BranchNet(seed: 9);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 5);
    }

    [Fact]
    public void Elementwise_functions_slices_sums_means_and_views_match_the_CPU()
    {
        using var cpu = new SliceReduceNet(seed: 14);
        using var host = new SliceReduceNet(seed: 14);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 7);
    }

    [Fact]
    public void Transposed_convolutions_in_a_decoder_match_the_CPU_and_count_their_launches()
    {
        using var cpu = new DecoderNet(seed: 15);
        using var host = new DecoderNet(seed: 15);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 8);
        LaunchesAsDeclared(host.ToDevice(f.Device), host, 9);
    }

    [Fact]
    public void Softmax_and_log_softmax_inside_a_network_match_the_CPU()
    {
        using var cpu = new SoftNet(seed: 12);
        using var host = new SoftNet(seed: 12);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seed: 6);
    }

    [Fact]
    public void Broadcast_gating_and_centring_match_the_CPU()
    {
        using var cpu = new GateNet(seed: 13);
        using var host = new GateNet(seed: 13);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 7);
    }

    [Fact]
    public void Non_square_and_grouped_kernels_match_the_CPU()
    {
        using var cpu = new WideKernelNet(seed: 4);
        using var host = new WideKernelNet(seed: 4);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 6);
        using var cpu2 = new TwoGroupNet(seed: 5);
        using var host2 = new TwoGroupNet(seed: 5);
        OneStepMatches(cpu2, host2, n => n.ToDevice(f.Device), batch: 3, seed: 7);
        LaunchesAsDeclared(host2.ToDevice(f.Device), host2, 8);
    }

    [Fact]
    public void One_dimensional_convolutions_and_permutations_match_the_CPU()
    {
        using var cpu = new Conv1dPermuteNet(seed: 17);
        using var host = new Conv1dPermuteNet(seed: 17);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 12);
    }

    [Fact]
    public void Nearest_and_bilinear_upsampling_match_the_CPU()
    {
        using var cpu = new UpsampleNet(seed: 18);
        using var host = new UpsampleNet(seed: 18);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 2, seed: 13);
    }

    [Fact]
    public void Group_normalisation_matches_the_CPU_and_counts_its_launches()
    {
        using var cpu = new GroupNormNet(seed: 19);
        using var host = new GroupNormNet(seed: 19);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 14);
        LaunchesAsDeclared(host.ToDevice(f.Device), host, 15);
    }

    [Fact]
    public void Token_ids_through_an_embedding_match_the_CPU_and_are_checked_on_the_host()
    {
        using var cpu = new TokenNet(seed: 20);
        using var host = new TokenNet(seed: 20);
        using var dev = host.ToDevice(f.Device);
        const int batch = 4;
        int[] ids = [0, 3, 3, 7, 19, 0, 5, 5, 5, 5, 1, 2, 0, 0, 0, 9, 9, 11, 4, 8, 15, 16, 3, 0]; // repeats and padding rows
        int[] labels = [2, 0, 1, 1];
        var cpuOut = new float[batch * 3]; var devOut = new float[batch * 3];
        cpu.Forward(ids, batch, cpuOut);
        dev.Forward(ids, batch, devOut);
        Relative(cpuOut, devOut, 1e-4, "Forward logits");
        float cpuLoss = cpu.TrainStep(ids, labels, batch, cpuOut);
        float devLoss = dev.TrainStep(ids, labels, batch, devOut);
        Assert.Equal(cpuLoss, devLoss, 1e-4 * (1 + Math.Abs(cpuLoss)));
        dev.CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, host.Parameters);
        Assert.All(host.Parameters.Gradient(host.Parameters["words.weight"]).Slice(0, 8).ToArray(), g => Assert.Equal(0f, g)); // the padding row
        Assert.Equal(cpu.EvaluateLoss(ids, labels, batch), dev.EvaluateLoss(ids, labels, batch), 1e-4 * (1 + Math.Abs(cpuLoss)));

        ids[13] = 20;
        Assert.Contains("token id 20 at position 13 is outside the embedding table's 20 rows", Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward(ids, batch, devOut)).Message);
        Assert.Contains("takes token ids", Assert.Throws<InvalidOperationException>(() => dev.Forward(new float[batch * 6], batch, devOut)).Message);
        TokenLaunchesAsDeclared(dev, [.. ids[..12].Select(i => i % 20)], [0, 1]);
    }

    /// <summary>As <see cref="LaunchesAsDeclared"/> for a twin over token ids.</summary>
    private void TokenLaunchesAsDeclared(DeviceNetwork dev, int[] ids, int[] labels)
    {
        dev.TrainStep(ids, labels, labels.Length);
        long before = f.Device.LaunchCount;
        dev.TrainStep(ids, labels, labels.Length);
        Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before);
    }

    [Fact]
    public void Depthwise_convolutions_match_the_CPU_and_count_their_launches()
    {
        using var cpu = new DepthwiseNet(seed: 16);
        using var host = new DepthwiseNet(seed: 16);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 10);
        LaunchesAsDeclared(host.ToDevice(f.Device), host, 11);
    }

    [Fact]
    public void Unflatten_and_flatten_views_match_the_CPU()
    {
        using var cpu = new ViewNet(seed: 3);
        using var host = new ViewNet(seed: 3);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 5, seed: 8);
    }

    [Fact]
    public void Arithmetic_with_constants_matches_the_CPU()
    {
        using var cpu = new ScaleNet(seed: 5);
        using var host = new ScaleNet(seed: 5);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 2);
    }

    [Fact]
    public void LayerNorm_on_features_and_on_rows_matches_the_CPU()
    {
        using var cpu = new NormMlp(seed: 2);
        using var host = new NormMlp(seed: 2);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 7, seed: 4);
    }

    [Fact]
    public void Dropout_draws_a_reproducible_mask_on_the_device_and_backward_uses_it()
    {
        using var cpu = new DropHead(seed: 5);
        using var host = new DropHead(seed: 5);
        using var dev = host.ToDevice(f.Device);
        const int batch = 8, classes = 200;
        var (x, y) = Batch(batch, 64, classes, 7);
        var eval = new float[batch * classes];
        cpu.Forward(x, batch, eval);
        var devEval = new float[eval.Length];
        dev.Forward(x, batch, devEval);
        Relative(eval, devEval, 1e-5, "evaluation-mode logits (dropout off)");

        var logits = new float[eval.Length];
        dev.TrainStep(x, y, batch, logits);
        int dropped = logits.Count(v => v == 0f);
        Assert.InRange(dropped / (double)logits.Length, 0.25, 0.35);
        var mask = logits.Select(v => v == 0f ? 0f : 1f / 0.7f).ToArray();
        Relative(eval.Zip(mask, (e, m) => e * m).ToArray(), logits, 1e-5, "kept logits scaled by 1/(1 − p)");

        // The oracle for backward: dL/dz = mask·(softmax(logits) − onehot)/B, so fc.bias's gradient is its column sum.
        var expected = new float[classes];
        for (int r = 0; r < batch; r++)
        {
            var row = logits.AsSpan(r * classes, classes);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var v in row) max = Math.Max(max, v);
            foreach (var v in row) sum += Math.Exp(v - max);
            for (int k = 0; k < classes; k++)
                expected[k] += (float)((Math.Exp(row[k] - max) / sum - (k == y[r] ? 1 : 0)) / batch * mask[r * classes + k]);
        }
        dev.CopyGradientsToHost();
        Relative(expected, host.Parameters.Gradient(host.Parameters["fc.bias"]), 1e-4, "fc.bias gradient through the mask");

        // Same seed and step: the same mask; another seed: another mask.
        using var twin = new DropHead(seed: 5);
        using var same = twin.ToDevice(f.Device);
        var again = new float[eval.Length];
        same.TrainStep(x, y, batch, again);
        Assert.Equal(logits, again);
        using var other = new DropHead(seed: 5);
        using var reseeded = other.ToDevice(f.Device);
        reseeded.DropoutSeed = 12345;
        reseeded.TrainStep(x, y, batch, again);
        Assert.NotEqual(logits, again);
    }

    [Fact]
    public void Twenty_AdamW_steps_on_the_device_follow_the_CPU()
    {
        using var cpu = new ResidualConvNet(seed: 11);
        using var host = new ResidualConvNet(seed: 11);
        using var dev = host.ToDevice(f.Device);
        var cpuOpt = new AdamW(cpu.Parameters, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        using var devOpt = new DeviceAdamW(dev, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        var (x, y) = Batch(8, cpu.InputSize, cpu.OutputSize, 5);
        var losses = new List<float>();
        for (int step = 0; step < 20; step++)
        {
            float a = cpu.TrainStep(x, y, 8); cpuOpt.Step();
            float b = dev.TrainStep(x, y, 8); devOpt.Step();
            Assert.True(Math.Abs(a - b) <= 1e-4 * (1 + Math.Abs(a)), $"step {step}: CPU loss {a}, device loss {b}");
            losses.Add(b);
        }
        Assert.True(losses[^1] < 0.7 * losses[0], $"the loss did not fall: {losses[0]} → {losses[^1]}");
        dev.CopyParametersToHost();
        Relative(cpu.Parameters.ReadValues, host.Parameters.ReadValues, 1e-3, "weights after 20 steps");
        // The copied-back weights run on the CPU path as on the device.
        var cpuOut = new float[8 * cpu.OutputSize]; var devOut = new float[cpuOut.Length];
        host.Forward(x, 8, cpuOut); dev.Forward(x, 8, devOut);
        Relative(cpuOut, devOut, 1e-4, "CPU forward of copied-back weights");
    }

    [Fact]
    public void Training_on_the_device_repeats_bit_for_bit()
    {
        // Each sum a step takes (bias, weight and embedding gradients, batch statistics, the gradient norm) is added in a fixed
        // order, so the same data and weights give the same bits every run, as on the CPU.
        static float[] Train<TNet>(TNet host, Func<TNet, DeviceNetwork> toDevice, int steps) where TNet : IClassifier, IDisposable
        {
            using (host)
            {
                using var dev = toDevice(host);
                using var opt = new DeviceAdamW(dev, 1e-2f);
                var (x, y) = Batch(6, host.InputSize, host.OutputSize, 3);
                for (int step = 0; step < steps; step++) { dev.TrainStep(x, y, 6); opt.ClipGradientNorm(0.5f); opt.Step(); }
                dev.CopyParametersToHost();
                return host.Parameters.ReadValues.ToArray();
            }
        }
        Assert.Equal(Train(new BnResNet(seed: 4), n => n.ToDevice(f.Device), 3), Train(new BnResNet(seed: 4), n => n.ToDevice(f.Device), 3));
        Assert.Equal(Train(new ResidualConvNet(seed: 7), n => n.ToDevice(f.Device), 3), Train(new ResidualConvNet(seed: 7), n => n.ToDevice(f.Device), 3));

        // MiniBert: embeddings whose ids repeat, attention with dropout, layer norms.
        float[] TrainBert()
        {
            using var host = new MiniBert(seed: 26);
            using var dev = host.ToDevice(f.Device);
            using var opt = new DeviceAdamW(dev, 1e-2f);
            var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 4);
            for (int step = 0; step < 3; step++) { dev.TrainStep(ids, labels, mask, 3, 6); opt.ClipGradientNorm(0.5f); opt.Step(); }
            dev.CopyParametersToHost();
            return host.Parameters.ReadValues.ToArray();
        }
        Assert.Equal(TrainBert(), TrainBert());
    }

    [Fact]
    public void SGD_with_momentum_on_the_device_follows_the_CPU()
    {
        using var cpu = new ResidualConvNet(seed: 5);
        using var host = new ResidualConvNet(seed: 5);
        using var dev = host.ToDevice(f.Device);
        var cpuOpt = new Sgd(cpu.Parameters, 0.05f, momentum: 0.9f, weightDecay: 1e-3f, nesterov: true);
        using var devOpt = new DeviceSgd(dev, 0.05f, momentum: 0.9f, weightDecay: 1e-3f, nesterov: true);
        var (x, y) = Batch(4, cpu.InputSize, cpu.OutputSize, 9);
        for (int step = 0; step < 5; step++)
        {
            float a = cpu.TrainStep(x, y, 4); cpuOpt.Step();
            float b = dev.TrainStep(x, y, 4); devOpt.Step();
            Assert.True(Math.Abs(a - b) <= 1e-4 * (1 + Math.Abs(a)), $"step {step}: CPU loss {a}, device loss {b}");
        }
    }

    [Fact]
    public void Frozen_parameters_stay_put_and_the_rest_train()
    {
        using var host = new ResidualConvNet(seed: 2);
        host.Parameters.Freeze("conv1.");
        using var dev = host.ToDevice(f.Device);
        var before = host.Parameters.ReadValues.ToArray();
        using var opt = new DeviceAdamW(dev, lr: 1e-2f);
        var (x, y) = Batch(4, host.InputSize, host.OutputSize, 3);
        dev.TrainStep(x, y, 4); opt.Step();
        dev.CopyParametersToHost();
        foreach (var p in host.Parameters.Parameters)
        {
            bool same = host.Parameters.ReadValue(p).SequenceEqual(before.AsSpan(p.Offset, p.Length));
            Assert.True(p.Name.StartsWith("conv1.") == same, $"{p.Name}: {(same ? "unchanged" : "changed")}");
        }
    }

    [Fact]
    public void A_training_step_of_the_seed_ConvNet_is_26_launches_with_its_chains_fused()
    {
        using var host = new ConvNet(seed: 1);
        using var dev = host.ToDevice(f.Device);
        var (x, y) = Batch(2, host.InputSize, host.OutputSize, 4);
        dev.TrainStep(x, y, 2);
        long before = f.Device.LaunchCount;
        dev.TrainStep(x, y, 2);
        // Forward 10 (each convolution's im2col and GEMM, then its pool reading the GEMM's output with the bias and the
        // ReLU after it, the linear layers' GEMMs, two fused chains), loss 2, backward 14 (each pool routing its gradient
        // into its convolution's layout and summing the bias gradient, the convolutions' patches and GEMMs…).
        Assert.Equal(26, dev.LaunchesPerTrainStep);
        // The pools' ReLUs, the convolutions' moves to and from the batch-major layout, fc1's bias + ReLU and fc2's bias
        // as kernels of their own.
        Assert.Equal(38, dev.LaunchesPerTrainStepUnfused);
        Assert.Equal(26, f.Device.LaunchCount - before);
    }

    [Theory]
    [InlineData(84, "embeddings.")]                                  // their backward (7 launches) and the first layer's input gradient (3)
    [InlineData(37, "embeddings.", "encoder.", "pooler.")]           // backward is the classifier's bias and weight gradients
    [InlineData(94)]                                                 // nothing frozen: every launch declared
    public void Backward_stops_where_nothing_before_it_trains(int launches, params string[] frozen)
    {
        // BERT fine-tuning's frozen variants: layers before the first trainable one need no gradient, so their backward
        // is never launched, nor the first trainable layer's input gradient; the trainable tensors' gradients are the
        // CPU's, the frozen ones' zero on both.
        using var cpu = new MiniBert(seed: 27);
        using var host = new MiniBert(seed: 27);
        cpu.Parameters.Freeze(frozen);
        host.Parameters.Freeze(frozen);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 5);
        float loss = 0f;
        Assert.Equal(launches, LaunchesOf(() => loss = dev.TrainStep(ids, labels, mask, 3, 6)));
        if (frozen.Length == 0) Assert.Equal(launches, dev.LaunchesPerTrainStep);
        Assert.Equal(cpu.TrainStep(ids, labels, mask, 3, 6), loss, 1e-5);
        dev.CopyGradientsToHost();
        foreach (var p in cpu.Parameters.Parameters)
        {
            var expected = cpu.Parameters.Gradient(p);
            Relative(expected, host.Parameters.Gradient(host.Parameters[p.Name]), 1e-4, "gradient of " + p.Name);
            if (!p.RequiresGrad) Assert.True(expected.IndexOfAnyExcept(0f) < 0, $"{p.Name} is frozen and has a gradient on the CPU");
        }
    }

    /// <summary>Freezes every third trainable tensor from the <paramref name="first"/>th on (by name, so a name that begins
    /// another's freezes both), in a store and its twin's host store alike; returns the frozen names.</summary>
    private static string[] FreezeEveryThird(ParameterStore cpu, ParameterStore host, int first)
    {
        var names = cpu.Parameters.Where(p => !p.IsBuffer).Select(p => p.Name).Where((_, i) => i % 3 == first).ToArray();
        cpu.Freeze(names);
        host.Freeze(names);
        Assert.True(cpu.Parameters.Any(p => !p.IsBuffer && p.RequiresGrad), "something still trains");
        return names;
    }

    /// <summary>The frozen tensors' gradients on the device are exactly zero (never computed), as on the CPU.</summary>
    private static void FrozenGradientsAreZero(ParameterStore host)
    {
        foreach (var p in host.Parameters.Where(p => !p.IsBuffer && !p.RequiresGrad))
            Assert.True(host.Gradient(p).IndexOfAnyExcept(0f) < 0, $"{p.Name} is frozen and has a gradient on the device");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Tensors_frozen_after_trainable_ones_get_no_gradient_on_the_device_as_on_the_CPU(int first)
    {
        // Every third tensor frozen, wherever it lies: a weight without its bias or a bias without its weight (GEMMs,
        // fused chains, convolutions), γ without β (batch and layer norms), some of attention's projections, an LSTM's or a
        // GRU's recurrent weights. Each kernel leaves the frozen tensor's gradient alone; the rest are the CPU's.
        void Images<TNet>(Func<ulong, TNet> make, Func<TNet, DeviceNetwork> toDevice, int batch, int seed) where TNet : IClassifier, IDisposable
        {
            using var cpu = make((ulong)seed); using var host = make((ulong)seed);
            FreezeEveryThird(cpu.Parameters, host.Parameters, first);
            OneStepMatches(cpu, host, toDevice, batch, seed + 1);
            FrozenGradientsAreZero(host.Parameters);
        }
        void Sequences<TNet>(Func<ulong, TNet> make, Func<TNet, DeviceNetwork> toDevice, int vocabulary, int seed) where TNet : ISequenceClassifier, IDisposable
        {
            using var cpu = make((ulong)seed); using var host = make((ulong)seed);
            FreezeEveryThird(cpu.Parameters, host.Parameters, first);
            SequenceStepMatches(cpu, host, toDevice, batch: 3, seq: 6, vocabulary, seed + 1);
            FrozenGradientsAreZero(host.Parameters);
        }
        Images(s => new ConvNet(seed: s), n => n.ToDevice(f.Device), batch: 2, seed: 60);
        Images(s => new ResidualConvNet(seed: s), n => n.ToDevice(f.Device), batch: 3, seed: 62);
        Images(s => new BnResNet(seed: s), n => n.ToDevice(f.Device), batch: 4, seed: 64);
        Sequences(s => new MiniBert(seed: s), n => n.ToDevice(f.Device), vocabulary: 50, seed: 66);
        Sequences(s => new LstmNet(seed: s), n => n.ToDevice(f.Device), vocabulary: 30, seed: 68);
        Sequences(s => new GruNet(seed: s), n => n.ToDevice(f.Device), vocabulary: 30, seed: 70);
    }

    [Fact]
    public void Training_only_the_biases_skips_every_weight_gradient()
    {
        // BitFit (fine-tuning a BERT's biases alone): no weight's gradient is launched — the projections', the dense
        // layers', the embeddings' tables — nor the embeddings' input gradients, which nothing needs.
        using var cpu = new MiniBert(seed: 72);
        using var host = new MiniBert(seed: 72);
        var weights = cpu.Parameters.Parameters.Where(p => !p.IsBuffer && !p.Name.EndsWith(".bias", StringComparison.Ordinal)).Select(p => p.Name).ToArray();
        cpu.Parameters.Freeze(weights);
        host.Parameters.Freeze(weights);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seq: 7, vocabulary: 50, seed: 73);
        FrozenGradientsAreZero(host.Parameters);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 74);
        // 94 − 16: per layer the projections' batched weight GEMM and the three dense layers' (8), the pooler's and the
        // classifier's (2), the three tables' sums (3), the position and token-type embeddings' input gradients (2) and
        // the embeddings' LayerNorm's (1, as β trains but nothing before it does).
        Assert.Equal(78, LaunchesOf(() => dev.TrainStep(ids, labels, mask, 3, 6)));
    }

    [Fact]
    public void A_batch_the_device_cannot_hold_is_a_clear_error_and_the_twin_goes_on_at_one_it_can()
    {
        // As PyTorch's OutOfMemoryError: the error says what was asked, for what, and what was free. The check comes
        // before the workspace in hand is freed, so the twin is as it was; a refusal mid-allocation (the driver's) leaves
        // no half-made workspace, and the next call allocates its own. A device of its own: the limits are per device.
        using var device = GpuDevice.Open("cpu-accelerator");
        using var cpu = new MiniBert(seed: 90);
        using var host = new MiniBert(seed: 90);
        using var dev = host.ToDevice(device);
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 91);
        var (bigIds, bigMask, bigLabels) = SequenceBatch(64, 6, 50, 3, 92);
        Array.Fill(bigMask, 1);
        Assert.Equal(cpu.TrainStep(ids, labels, mask, 3, 6), dev.TrainStep(ids, labels, mask, 3, 6), 1e-5);

        device.FreeMemoryOverride = 64 * 1024;
        var e = Assert.Throws<DeviceMemoryException>(() => dev.TrainStep(bigIds, bigLabels, bigMask, 64, 6));
        Assert.Contains("MiniBert's workspace at batch 64 (activations", e.Message);
        Assert.Contains("0.1 MiB free of", e.Message);
        Assert.Equal(64 * 1024, e.FreeBytes);
        Assert.True(e.RequestedBytes > 64 * 1024);
        Assert.Contains("cannot hold", Assert.Throws<DeviceMemoryException>(() => device.Allocate(1 << 20)).Message);
        device.FreeMemoryOverride = null;
        Assert.Equal(3, dev.Capacity);
        Assert.Equal(cpu.TrainStep(ids, labels, mask, 3, 6), dev.TrainStep(ids, labels, mask, 3, 6), 1e-5);

        int allocations = 0;
        device.AllocationFault = _ => ++allocations == 3 ? new InvalidOperationException("out of memory (simulated)") : null;
        e = Assert.Throws<DeviceMemoryException>(() => dev.TrainStep(bigIds, bigLabels, bigMask, 64, 6));
        Assert.Contains("MiniBert's workspace at batch 64", e.Message);
        Assert.Contains("out of memory (simulated)", e.Message);
        Assert.Equal(0, dev.Capacity);
        device.AllocationFault = null;
        Assert.Equal(cpu.TrainStep(ids, labels, mask, 3, 6), dev.TrainStep(ids, labels, mask, 3, 6), 1e-5);
        dev.CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, host.Parameters);

        device.FreeMemoryOverride = 16;
        Assert.Contains("MiniBert's parameters do not fit", Assert.Throws<DeviceMemoryException>(() => host.ToDevice(device)).Message);
    }

    [Fact]
    public void A_twin_that_only_infers_holds_no_gradient_memory_until_it_trains()
    {
        // As PyTorch's parameters have no .grad before a backward: inference allocates neither the parameters' gradients
        // nor the activations'; the first training step allocates both and computes the CPU's gradients, and a larger
        // batch after it grows them with the workspace.
        using var cpu = new MiniBert(seed: 28);
        using var host = new MiniBert(seed: 28);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 6);
        var cpuLogits = new float[9]; var devLogits = new float[9];
        cpu.Forward(ids, mask, 3, 6, cpuLogits);
        dev.Forward(ids, mask, 3, 6, devLogits);
        Relative(cpuLogits, devLogits, 1e-4, "logits");
        Assert.False(dev.HoldsGradients);
        foreach (var (batch, seed) in new[] { (3, 6), (5, 7) })
        {
            (ids, mask, labels) = SequenceBatch(batch, 6, 50, 3, seed);
            Assert.Equal(cpu.TrainStep(ids, labels, mask, batch, 6), dev.TrainStep(ids, labels, mask, batch, 6), 1e-5);
            Assert.True(dev.HoldsGradients);
            dev.CopyGradientsToHost();
            GradientsMatch(cpu.Parameters, host.Parameters, $"batch {batch}: gradient of ");
        }
    }

    [Fact]
    public void A_frozen_first_convolution_costs_the_ConvNet_no_backward_launch()
    {
        // conv1 frozen: its pool's fused backward (3 launches) is skipped, and so is conv2's input gradient (2); the
        // gradients are the CPU's, conv1's zero on both.
        using var cpu = new ConvNet(seed: 4);
        using var host = new ConvNet(seed: 4);
        cpu.Parameters.Freeze("conv1.");
        host.Parameters.Freeze("conv1.");
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 2, seed: 5);
        using var dev = host.ToDevice(f.Device);
        var (x, y) = Batch(2, host.InputSize, host.OutputSize, 6);
        Assert.Equal(dev.LaunchesPerTrainStep - 5, LaunchesOf(() => dev.TrainStep(x, y, 2)));
    }

    [Fact]
    public void An_optimizer_step_is_one_launch_over_every_trainable_tensor_as_freezing_and_decay_leave_them()
    {
        // MiniBert's tensors, embeddings frozen, biases and norms not decayed: still one launch, whose runs follow a
        // freeze or unfreeze between steps; the norm is two launches and clipping a third, whatever the tensors.
        using var cpu = new MiniBert(seed: 31);
        using var host = new MiniBert(seed: 31);
        cpu.Parameters.Freeze("embeddings.");
        host.Parameters.Freeze("embeddings.");
        using var dev = host.ToDevice(f.Device);
        var cpuOpt = new AdamW(cpu.Parameters, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        using var opt = new DeviceAdamW(dev, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 32);
        for (int step = 0; step < 3; step++)
        {
            if (step == 1) { cpu.Parameters.Freeze("classifier."); host.Parameters.Freeze("classifier."); }
            if (step == 2) { cpu.Parameters.Unfreeze("embeddings."); host.Parameters.Unfreeze("embeddings."); }
            cpu.TrainStep(ids, labels, mask, 3, 6);
            dev.TrainStep(ids, labels, mask, 3, 6);
            float expected = GradientClipping.ClipByGlobalNorm(cpu.Parameters, 0.05f);
            long before = f.Device.LaunchCount;
            Assert.Equal(expected, opt.ClipGradientNorm(0.05f), 1e-4 * expected);
            Assert.Equal(expected > 0.05f ? 3 : 2, f.Device.LaunchCount - before);
            cpuOpt.Step();
            before = f.Device.LaunchCount;
            opt.Step();
            Assert.Equal(1, f.Device.LaunchCount - before);
            dev.CopyParametersToHost();
            foreach (var p in cpu.Parameters.Parameters)
                Relative(cpu.Parameters.ReadValue(p), host.Parameters.ReadValue(host.Parameters[p.Name]), 1e-3, $"step {step}: {p.Name}"); // Adam turns noise in a near-zero gradient (a key bias) into steps of lr
        }

        // SGD too, on the seed ConvNet.
        using var convNet = new ConvNet(seed: 1);
        using var convTwin = convNet.ToDevice(f.Device);
        using var sgd = new DeviceSgd(convTwin, 0.05f, momentum: 0.9f);
        var (x, y) = Batch(2, convNet.InputSize, convNet.OutputSize, 4);
        convTwin.TrainStep(x, y, 2);
        long sgdBefore = f.Device.LaunchCount;
        sgd.Step();
        Assert.Equal(1, f.Device.LaunchCount - sgdBefore);
    }

    /// <summary>A device optimizer of a user's own: per tensor, through <c>Update</c>.</summary>
    private sealed class HalfStep(DeviceNetwork network) : DeviceOptimizer(network, 0.5f)
    {
        public List<string> Stepped { get; } = [];

        protected override void Update(ParameterInfo p, ILGPU.ArrayView<float> value, ILGPU.ArrayView<float> gradient)
        {
            Stepped.Add(p.Name);
            var w = new float[p.Length]; var g = new float[p.Length];
            DeviceNetwork.Download(value, w); DeviceNetwork.Download(gradient, g);
            for (int i = 0; i < w.Length; i++) w[i] -= LearningRate * g[i];
            DeviceNetwork.Upload<float>(w, value);
        }
    }

    /// <summary>One that forgot to.</summary>
    private sealed class NoStep(DeviceNetwork network) : DeviceOptimizer(network, 0.5f);

    [Fact]
    public void A_device_optimizer_of_ones_own_steps_each_trainable_tensor_through_Update()
    {
        using var cpu = new ResidualConvNet(seed: 12);
        using var host = new ResidualConvNet(seed: 12);
        cpu.Parameters.Freeze("conv1."); host.Parameters.Freeze("conv1.");
        using var dev = host.ToDevice(f.Device);
        var (x, y) = Batch(3, cpu.InputSize, cpu.OutputSize, 6);
        cpu.TrainStep(x, y, 3); new Sgd(cpu.Parameters, 0.5f).Step();
        dev.TrainStep(x, y, 3);
        var opt = new HalfStep(dev);
        opt.Step();
        Assert.Equal(host.Parameters.Parameters.Where(p => p.RequiresGrad && p.Length > 0).Select(p => p.Name), opt.Stepped);
        dev.CopyParametersToHost();
        Relative(cpu.Parameters.ReadValues, host.Parameters.ReadValues, 1e-4, "a step through Update");
        var e = Assert.Throws<NotSupportedException>(() => new NoStep(dev).Step());
        Assert.Contains("NoStep does not override Update", e.Message);
    }

    [Fact]
    public void Many_threads_may_use_the_twins_of_one_device_and_each_gets_its_own_answer()
    {
        // Three threads infer through one twin at batches 1, 2 and 3 (its workspace grows under the others), one calls a
        // generated Forward over spans, and one trains another twin: each answer is the one it gets alone.
        using var served = new ResidualConvNet(seed: 3);
        using var trained = new ResidualConvNet(seed: 4);
        using var alone = new ResidualConvNet(seed: 4);
        using var twoInputs = new TwoInputNet(seed: 5);
        using var servedTwin = served.ToDevice(f.Device);
        using var trainedTwin = trained.ToDevice(f.Device);
        using var aloneTwin = alone.ToDevice(f.Device);
        using var twoInputsTwin = twoInputs.ToDevice(f.Device);
        var inputs = Enumerable.Range(1, 3).Select(b => DeviceFixture.Random(b * served.InputSize, 20 + b)).ToArray();
        var expected = inputs.Select((x, t) => { var o = new float[(t + 1) * served.OutputSize]; served.Forward(x, t + 1, o); return o; }).ToArray();
        var image = DeviceFixture.Random(2 * 36, 30); int[] tags = [1, 2, 3, 8, 0, 4]; var meta = DeviceFixture.Random(2 * 4, 31);
        var expectedTwo = new float[2 * 3];
        twoInputs.Forward(image, tags, meta, 2, expectedTwo);
        var (x, y) = Batch(3, trained.InputSize, trained.OutputSize, 32);
        var work = new List<Action>();
        for (int t = 0; t < 3; t++)
        {
            int b = t + 1;
            work.Add(() =>
            {
                var o = new float[b * served.OutputSize];
                for (int i = 0; i < 4; i++) { servedTwin.Forward(inputs[b - 1], b, o); Relative(expected[b - 1], o, 1e-4, $"batch {b}, call {i}"); }
            });
        }
        work.Add(() =>
        {
            var o = new float[2 * 3];
            for (int i = 0; i < 4; i++) { twoInputsTwin.Forward(image, tags, meta, 2, o); Relative(expectedTwo, o, 1e-4, $"two inputs, call {i}"); }
        });
        var losses = new float[3];
        using var opt = new DeviceAdamW(trainedTwin, 1e-2f);
        work.Add(() => { for (int i = 0; i < 3; i++) { losses[i] = trainedTwin.TrainStep(x, y, 3); opt.Step(); } });
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = work.Select(a => new Thread(() => { try { a(); } catch (Exception e) { errors.Enqueue(e); } })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
        using var aloneOpt = new DeviceAdamW(aloneTwin, 1e-2f);
        for (int i = 0; i < 3; i++) { Assert.Equal(losses[i], aloneTwin.TrainStep(x, y, 3)); aloneOpt.Step(); }
        trainedTwin.CopyParametersToHost(); aloneTwin.CopyParametersToHost();
        Assert.Equal(alone.Parameters.ReadValues.ToArray(), trained.Parameters.ReadValues.ToArray());
    }

    [Fact]
    public void A_twin_disposed_on_another_thread_finishes_the_call_in_flight_and_then_refuses()
    {
        using var host = new ResidualConvNet(seed: 6);
        var twin = host.ToDevice(f.Device);
        var opt = new DeviceAdamW(twin, 1e-2f);
        var (x, y) = Batch(2, host.InputSize, host.OutputSize, 33);
        float loss = float.NaN;
        Exception? refused = null;
        var training = new Thread(() => { try { loss = twin.TrainStep(x, y, 2); } catch (Exception e) { refused = e; } });
        training.Start();
        twin.Dispose(); // waits for the step if it has begun; else the step refuses
        training.Join();
        Assert.True(refused is null ? float.IsFinite(loss) : refused is ObjectDisposedException, $"loss {loss}, {refused}");
        Assert.Throws<ObjectDisposedException>(() => twin.TrainStep(x, y, 2));
        Assert.Contains("ResidualConvNet", Assert.Throws<ObjectDisposedException>(() => opt.Step()).Message);
        opt.Dispose();
        using var fresh = host.ToDevice(f.Device);
        using var freshOpt = new DeviceAdamW(fresh, 1e-2f);
        freshOpt.Dispose();
        Assert.Contains("has been disposed", Assert.Throws<ObjectDisposedException>(() => freshOpt.Step()).Message);
    }

    [Fact]
    public void A_batch_already_on_the_device_trains_and_infers_as_one_from_the_host()
    {
        using var a = new ResidualConvNet(seed: 8);
        using var b = new ResidualConvNet(seed: 8);
        using var fromHost = a.ToDevice(f.Device);
        using var onDevice = b.ToDevice(f.Device);
        var (x, y) = Batch(3, a.InputSize, a.OutputSize, 6);
        using var X = f.Upload(x); using var Y = f.Upload(y); using var O = f.Device.Allocate(3 * a.OutputSize);
        Assert.Equal(fromHost.TrainStep(x, y, 3), onDevice.TrainStep(X.View, Y.View, 3));
        var expected = new float[3 * a.OutputSize];
        fromHost.Forward(x, 3, expected);
        onDevice.Forward(X.View, 3, O.View);
        Assert.Equal(expected, DeviceFixture.Download(O, expected.Length));
        using var bad = f.Upload(new[] { 0, 9, 1 });
        var e = Assert.Throws<ArgumentException>(() => onDevice.TrainStep(X.View, bad.View, 3));
        Assert.Contains("label 9 in row 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => onDevice.Forward(X.View, 4, O.View));
        Assert.Contains("a batch of 4 needs", e.Message);
    }

    [Fact]
    public void Wrong_shapes_bad_labels_and_a_disposed_device_are_clear_errors()
    {
        using var host = new ConvNet(seed: 1);
        using var dev = host.ToDevice(f.Device);
        var e = Assert.Throws<ArgumentException>(() => dev.Forward(new float[783], 1, new float[10]));
        Assert.Contains("ConvNet", e.Message);
        Assert.Contains("1, 28, 28", e.Message);
        var (x, _) = Batch(2, host.InputSize, host.OutputSize, 4);
        e = Assert.Throws<ArgumentException>(() => dev.TrainStep(x, new[] { 1, 10 }, 2));
        Assert.Contains("label 10 in row 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => dev.TrainStep(x, new[] { 1 }, 2));
        Assert.Contains("1 labels for a batch of 2", e.Message);
        // A beta of 1 divides by zero in the bias correction: refused as torch.optim refuses it.
        Assert.Contains("beta2 must be in [0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceAdamW(dev, beta2: 1f)).Message);
        Assert.Contains("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceSgd(dev, 0.1f, momentum: -1f)).Message);

        var own = GpuDevice.Open("cpu-accelerator");
        var orphan = host.ToDevice(own);
        own.Dispose();
        Assert.Throws<ObjectDisposedException>(() => orphan.Forward(x, 2, new float[20]));
        orphan.Dispose();
        Assert.Throws<ObjectDisposedException>(() => orphan.Forward(x, 2, new float[20]));
    }

    [Fact]
    public void Two_inputs_without_a_loss_infer_on_the_device_from_spans_and_from_a_TensorBatch()
    {
        using var net = new TwoInputFeatures(seed: 52);
        using var dev = net.ToDevice(f.Device);
        var a = DeviceFixture.Random(5 * 4, 1); var b = DeviceFixture.Random(5 * 4, 2);
        var expected = new float[5 * 3];
        net.Forward(a, b, 5, expected);
        var got = new float[expected.Length];
        dev.Forward(a, b, 5, got);
        Relative(expected, got, 1e-5, "Forward over spans");
        var batch = new TensorDataLoader(new TensorDataset(5).Add("a", a, 4).Add("b", b, 4), 5, shuffle: false).Epoch(0).First();
        var outputs = new[] { new float[expected.Length] };
        dev.Forward(batch, outputs);
        Relative(expected, outputs[0], 1e-5, "Forward over a TensorBatch");

        // Each span checked and named as on the CPU; a loss asked of a network without one is refused.
        var wrongInput = Assert.Throws<ArgumentException>(() => dev.Forward(a, b.AsSpan(1).ToArray(), 5, got));
        Assert.Contains("input 'b' has 19 values", wrongInput.Message);
        Assert.Contains("output 'output' has 14 floats", Assert.Throws<ArgumentException>(() => dev.Forward(a, b, 5, new float[14])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward(a, b, 0, got));
        var noLoss = Assert.Throws<InvalidOperationException>(() => ((IMultiNetwork)dev).TrainStep(batch, outputs, default));
        Assert.Contains("inference only", noLoss.Message);
        Assert.Empty(((IMultiNetwork)dev).Losses);
        Assert.Equal(new[] { "a", "b" }, ((IMultiNetwork)dev).Inputs.Select(i => i.Name));
    }

    /// <summary>A padded batch of token ids: sample b has <c>seq − b</c> real tokens, then padding id 0 with mask 0.</summary>
    private static (int[] Ids, int[] Mask, int[] Labels) SequenceBatch(int batch, int seq, int vocabulary, int classes, int seed)
    {
        var r = new Random(seed);
        var ids = new int[batch * seq]; var mask = new int[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
            {
                bool real = t < seq - b;
                ids[b * seq + t] = real ? r.Next(1, vocabulary) : 0;
                mask[b * seq + t] = real ? 1 : 0;
            }
        return (ids, mask, Enumerable.Range(0, batch).Select(i => (i + seed) % classes).ToArray());
    }

    private void SequenceStepMatches<TNet>(TNet cpu, TNet gpuHost, Func<TNet, DeviceNetwork> toDevice, int batch, int seq, int vocabulary, int seed) where TNet : ISequenceClassifier
    {
        using var dev = toDevice(gpuHost);
        var (ids, mask, labels) = SequenceBatch(batch, seq, vocabulary, cpu.OutputSize, seed);
        var cpuOut = new float[batch * cpu.OutputSize]; var devOut = new float[cpuOut.Length];
        foreach (var m in new[] { mask, [] })
        {
            cpu.Forward(ids, m, batch, seq, cpuOut);
            dev.Forward(ids, m, batch, seq, devOut);
            Relative(cpuOut, devOut, 1e-4, $"Forward logits ({(m.Length == 0 ? "no mask" : "padded")})");
        }
        StepMatches(cpu.Parameters, dev, gpuHost.Parameters, o => cpu.TrainStep(ids, labels, mask, batch, seq, o), o => dev.TrainStep(ids, labels, mask, batch, seq, o),
            () => cpu.EvaluateLoss(ids, labels, mask, batch, seq), () => dev.EvaluateLoss(ids, labels, mask, batch, seq), cpuOut.Length, "TrainStep logits", lossTolerance: 1e-4);
    }

    [Fact]
    public void MiniBert_on_the_device_matches_the_CPU_on_a_padded_batch_in_logits_loss_and_every_gradient()
    {
        using var cpu = new MiniBert(seed: 21);
        using var host = new MiniBert(seed: 21);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seq: 7, vocabulary: 50, seed: 1);
        // The longest sequence the workspace is laid out for, and a batch that grows it.
        using var cpu2 = new MiniBert(seed: 22);
        using var host2 = new MiniBert(seed: 22);
        SequenceStepMatches(cpu2, host2, n => n.ToDevice(f.Device), batch: 4, seq: MiniBert.MaxSequence, vocabulary: 50, seed: 2);
    }

    [Fact]
    public void MiniBert_launched_as_on_CUDA_matches_the_CPU()
    {
        // The CPU accelerator simulating an NVIDIA GPU, each launch shaped as on CUDA: every GEMM and attention product
        // through the 16×16 tiled kernel, the layer norms, softmaxes and the loss with rows of warps of 32.
        using var simulated = GpuDevice.OpenCudaShapedSimulation();
        using var cpu = new MiniBert(seed: 25);
        using var host = new MiniBert(seed: 25);
        SequenceStepMatches(cpu, host, n => n.ToDevice(simulated), batch: 2, seq: 5, vocabulary: 50, seed: 3);
    }

    [Fact]
    public void Batch_norm_residual_and_recurrent_networks_launched_as_on_CUDA_match_the_CPU()
    {
        // Batch statistics a group of 256 threads per channel, column sums in strips of 8 columns, the LSTM's time loop
        // with its state staged in shared memory, as a GPU launches them.
        using var simulated = GpuDevice.OpenCudaShapedSimulation();
        using (var cpu = new BnResNet(seed: 4)) using (var host = new BnResNet(seed: 4))
            OneStepMatches(cpu, host, n => n.ToDevice(simulated), batch: 6, seed: 3);
        using var cpuLstm = new LstmNet(seed: 45);
        using var hostLstm = new LstmNet(seed: 45);
        SequenceStepMatches(cpuLstm, hostLstm, n => n.ToDevice(simulated), batch: 3, seq: 7, vocabulary: 30, seed: 8);
    }

    [Fact]
    public void Attention_over_a_fixed_length_without_a_mask_matches_the_CPU()
    {
        using var cpu = new FixedAttentionNet(seed: 23);
        using var host = new FixedAttentionNet(seed: 23);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 4);
    }

    [Fact]
    public void Twenty_AdamW_steps_of_MiniBert_on_the_device_follow_the_CPU_and_sequence_lengths_may_change()
    {
        using var cpu = new MiniBert(seed: 24);
        using var host = new MiniBert(seed: 24);
        using var dev = host.ToDevice(f.Device);
        var cpuOpt = new AdamW(cpu.Parameters, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        using var devOpt = new DeviceAdamW(dev, lr: 1e-2f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
        var batches = new[] { SequenceBatch(4, 9, 50, 3, 5), SequenceBatch(4, 5, 50, 3, 6) };
        var losses = new List<float>();
        for (int step = 0; step < 20; step++)
        {
            var (ids, mask, labels) = batches[step % 2];
            int seq = ids.Length / 4;
            float a = cpu.TrainStep(ids, labels, mask, 4, seq); cpuOpt.Step();
            float b = dev.TrainStep(ids, labels, mask, 4, seq); devOpt.Step();
            Assert.True(Math.Abs(a - b) <= 2e-4 * (1 + Math.Abs(a)), $"step {step}: CPU loss {a}, device loss {b}");
            losses.Add(b);
        }
        Assert.True(losses[^1] < 0.5 * losses[0], $"the loss did not fall: {losses[0]} → {losses[^1]}");
        dev.CopyParametersToHost();
        // A key projection's bias adds the same q·b to every score of a row, which softmax ignores: its gradient is
        // float noise (on either path), which Adam's normalisation turns into steps of the learning rate's size.
        foreach (var p in cpu.Parameters.Parameters.Where(p => !p.Name.EndsWith("key.bias", StringComparison.Ordinal)))
            Relative(cpu.Parameters.ReadValue(p), host.Parameters.ReadValue(host.Parameters[p.Name]), 1e-3, p.Name + " after 20 steps");
    }

    [Fact]
    public void Gradient_clipping_on_the_device_matches_the_CPU_and_leaves_frozen_tensors_alone()
    {
        using var cpu = new MiniBert(seed: 26);
        using var host = new MiniBert(seed: 26);
        cpu.Parameters.Freeze("embeddings.");
        host.Parameters.Freeze("embeddings.");
        using var dev = host.ToDevice(f.Device);
        using var opt = new DeviceAdamW(dev);
        var (ids, mask, labels) = SequenceBatch(3, 6, 50, 3, 4);
        cpu.TrainStep(ids, labels, mask, 3, 6);
        dev.TrainStep(ids, labels, mask, 3, 6);
        dev.CopyGradientsToHost();
        var unclipped = host.Parameters.Gradients.ToArray();
        float expected = GradientClipping.ClipByGlobalNorm(cpu.Parameters, 0.05f);
        float norm = opt.ClipGradientNorm(0.05f);
        Assert.True(expected > 0.05f, $"the norm {expected} should need clipping");
        Assert.Equal(expected, norm, 1e-4 * expected);
        dev.CopyGradientsToHost();
        foreach (var p in cpu.Parameters.Parameters.Where(p => p.RequiresGrad))
            Relative(cpu.Parameters.Gradient(p), host.Parameters.Gradient(host.Parameters[p.Name]), 1e-4, "clipped gradient of " + p.Name);
        foreach (var p in host.Parameters.Parameters.Where(p => !p.RequiresGrad))
            Assert.Equal(unclipped.AsSpan(p.Offset, p.Length), host.Parameters.Gradient(p));
        // Below the bound nothing changes; the norm is still reported.
        Assert.Equal(0.05f, opt.ClipGradientNorm(1f), 1e-4);
    }

    /// <summary>One training step of a network (over a padded sequence, say) on the CPU and on its twin: the loss, the
    /// <paramref name="outputs"/> outputs and every gradient agree, and so does the evaluation loss. Returns the CPU's
    /// loss and outputs.</summary>
    private static (float Loss, float[] Outputs) StepMatches(ParameterStore cpu, DeviceNetwork dev, ParameterStore host, Func<float[], float> cpuStep,
        Func<float[], float> devStep, Func<float> cpuEvaluate, Func<float> devEvaluate, int outputs, string what, double lossTolerance = 1e-5)
    {
        var cpuOut = new float[outputs]; var devOut = new float[outputs];
        float a = cpuStep(cpuOut), b = devStep(devOut);
        Assert.Equal(a, b, lossTolerance * (1 + Math.Abs(a)));
        Relative(cpuOut, devOut, 1e-4, what);
        dev.CopyGradientsToHost();
        GradientsMatch(cpu, host);
        Assert.Equal(cpuEvaluate(), devEvaluate(), lossTolerance * (1 + Math.Abs(a)));
        return (a, cpuOut);
    }

    /// <summary><paramref name="rows"/> random distributions over <paramref name="classes"/> (each row sums to 1).</summary>
    private static float[] Distributions(int rows, int classes, int seed)
    {
        var t = DeviceFixture.Random(rows * classes, seed).Select(v => MathF.Exp(2f * v)).ToArray();
        for (int r = 0; r < rows; r++)
        {
            float sum = 0f;
            for (int c = 0; c < classes; c++) sum += t[r * classes + c];
            for (int c = 0; c < classes; c++) t[r * classes + c] /= sum;
        }
        return t;
    }

    private void RegressionStepMatches<TNet>(TNet cpu, TNet gpuHost, Func<TNet, DeviceNetwork> toDevice, int batch, int seed, bool probabilities = false) where TNet : IRegressor
    {
        var x = DeviceFixture.Random(batch * cpu.InputSize, seed);
        var t = DeviceFixture.Random(batch * cpu.OutputSize, seed + 1, scale: 2f);
        if (probabilities) t = t.Select(v => (v + 2f) / 4f).ToArray();
        using var dev = toDevice(gpuHost);
        Assert.IsAssignableFrom<IRegressor>(dev);
        var cpuOut = new float[batch * cpu.OutputSize]; var devOut = new float[cpuOut.Length];
        float cpuLoss = cpu.TrainStep(x, t, batch, cpuOut);
        float devLoss = dev.TrainStep(x, t, batch, devOut);
        Assert.Equal(cpuLoss, devLoss, 1e-5 * (1 + Math.Abs(cpuLoss)));
        Relative(cpuOut, devOut, 1e-4, "TrainStep outputs");
        dev.CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, gpuHost.Parameters);
        Assert.Equal(cpu.EvaluateLoss(x, t, batch), dev.EvaluateLoss(x, t, batch), 1e-5 * (1 + Math.Abs(cpuLoss)));
        Assert.Contains("float targets", Assert.Throws<InvalidOperationException>(() => dev.TrainStep(x, new int[batch], batch)).Message);
        Assert.Contains("targets have 1 floats", Assert.Throws<ArgumentException>(() => dev.TrainStep(x, new float[1], batch)).Message);
    }

    [Fact]
    public void Losses_on_float_targets_match_the_CPU_in_loss_outputs_and_every_gradient()
    {
        using (var cpu = new MseNet(seed: 31)) using (var host = new MseNet(seed: 31)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seed: 1);
        using (var cpu = new L1Net(seed: 32)) using (var host = new L1Net(seed: 32)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 5, seed: 2);
        using (var cpu = new SmoothL1Net(seed: 33)) using (var host = new SmoothL1Net(seed: 33)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 6, seed: 3);
        using (var cpu = new BceNet(seed: 34)) using (var host = new BceNet(seed: 34)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 4, probabilities: true);
        using (var cpu = new KlNet(seed: 43)) using (var host = new KlNet(seed: 43)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seed: 5, probabilities: true);
        using (var cpu = new KlMeanNet(seed: 44)) using (var host = new KlMeanNet(seed: 44)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 6, probabilities: true);
        using (var cpu = new QuantileNet(seed: 57)) using (var host = new QuantileNet(seed: 57)) RegressionStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seed: 7);
        using (var kl = new KlNet(seed: 1)) using (var klTwin = kl.ToDevice(f.Device))
            Assert.Contains("target 2 is -0.5", Assert.Throws<ArgumentException>(() => klTwin.TrainStep(new float[6], [0.5f, 0.5f, -0.5f, 0.5f], 1)).Message);
        using var classifier = new ConvNet(seed: 1);
        using var twin = classifier.ToDevice(f.Device);
        Assert.Contains("class labels", Assert.Throws<InvalidOperationException>(() => twin.TrainStep(new float[784], new float[10], 1)).Message);
    }

    [Fact]
    public void A_regressor_twin_trains_under_the_Trainer_as_the_CPU_network_does()
    {
        var samples = DeviceFixture.Random(40 * 50, 6);
        var targets = DeviceFixture.Random(40 * 3, 7);
        var data = new Dataset(samples, targets, [2, 5, 5], [3]);
        using var cpu = new MseNet(seed: 35);
        using var host = new MseNet(seed: 35);
        using var dev = host.ToDevice(f.Device);
        using var devOpt = new DeviceSgd(dev, 0.05f, momentum: 0.9f);
        var options = new TrainerOptions { Epochs = 3, MaxGradNorm = 1f };
        var a = new Trainer(cpu, new Sgd(cpu.Parameters, 0.05f, momentum: 0.9f), options).Fit(new DataLoader(data, 8, shuffle: true, seed: 2), null);
        var b = new Trainer((IRegressor)dev, devOpt, options).Fit(new DataLoader(data, 8, shuffle: true, seed: 2), null);
        for (int e = 0; e < 3; e++) Assert.Equal(a[e].TrainLoss, b[e].TrainLoss, 1e-4 * (1 + a[e].TrainLoss));
        Assert.True(b[^1].TrainLoss < b[0].TrainLoss, "the loss should fall");
    }

    [Fact]
    public void Batched_matrix_products_match_the_CPU_over_heads_and_along_a_sequence()
    {
        using (var cpu = new HandAttentionNet(seed: 36)) using (var host = new HandAttentionNet(seed: 36))
            OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 5);
        using var cpu2 = new SeqMatMulNet(seed: 37);
        using var host2 = new SeqMatMulNet(seed: 37);
        SequenceStepMatches(cpu2, host2, n => n.ToDevice(f.Device), batch: 3, seq: 6, vocabulary: 30, seed: 6);
    }

    [Fact]
    public void One_hot_rows_of_token_ids_match_the_CPU_and_ids_are_checked_against_their_width()
    {
        using var cpu = new OneHotNet(seed: 38);
        using var host = new OneHotNet(seed: 38);
        using var dev = host.ToDevice(f.Device);
        int[] ids = [0, 9, 3, 3, 7, 1, 2, 8, 0, 5, 4, 4, 4, 6, 9];
        int[] labels = [1, 2, 0];
        var cpuOut = new float[9]; var devOut = new float[9];
        float cpuLoss = cpu.TrainStep(ids, labels, 3, cpuOut);
        float devLoss = dev.TrainStep(ids, labels, 3, devOut);
        Assert.Equal(cpuLoss, devLoss, 1e-4 * (1 + Math.Abs(cpuLoss)));
        Relative(cpuOut, devOut, 1e-4, "logits");
        dev.CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, host.Parameters);
        ids[4] = 11; // inside the embedding's 12 rows, outside the one-hot's 10
        Assert.Contains("token id 11 at position 4", Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward(ids, 3, devOut)).Message);
    }

    [Fact]
    public void Softmax_sums_and_means_over_a_masked_sequence_match_the_CPU()
    {
        using var cpu = new AttentionPoolNet(seed: 39);
        using var host = new AttentionPoolNet(seed: 39);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seq: 7, vocabulary: 40, seed: 7);
    }

    [Fact]
    public void NLL_on_log_probabilities_matches_the_CPU()
    {
        using var cpu = new NllNet(seed: 40);
        using var host = new NllNet(seed: 40);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 5, seed: 9);
    }

    [Fact]
    public void Class_weights_and_an_ignored_label_match_the_CPU_in_cross_entropy_and_NLL()
    {
        var x = DeviceFixture.Random(5 * 6, 11);
        int[] labels = [2, -100, 0, 1, 2];
        void Matches<TNet>(TNet cpu, TNet host, Func<TNet, DeviceNetwork> toDevice) where TNet : IClassifier
        {
            using var dev = toDevice(host);
            var cpuOut = new float[15]; var devOut = new float[15];
            float cpuLoss = cpu.TrainStep(x, labels, 5, cpuOut);
            float devLoss = dev.TrainStep(x, labels, 5, devOut);
            Assert.Equal(cpuLoss, devLoss, 1e-5 * (1 + Math.Abs(cpuLoss)));
            dev.CopyGradientsToHost();
            GradientsMatch(cpu.Parameters, host.Parameters);
            Assert.Equal(cpu.EvaluateLoss(x, labels, 5), dev.EvaluateLoss(x, labels, 5), 1e-5 * (1 + Math.Abs(cpuLoss)));
            // Every label ignored: loss 0 and no gradient, as on the CPU.
            Assert.Equal(0f, dev.TrainStep(x, [-100, -100, -100, -100, -100], 5));
            Assert.Contains("not the ignored label -100", Assert.Throws<ArgumentException>(() => dev.TrainStep(x, [0, 3, 0, 0, 0], 5)).Message);
        }
        using (var cpu = new WeightedNet(seed: 41)) using (var host = new WeightedNet(seed: 41)) Matches(cpu, host, n => n.ToDevice(f.Device));
        using (var cpu = new WeightedNllNet(seed: 42)) using (var host = new WeightedNllNet(seed: 42)) Matches(cpu, host, n => n.ToDevice(f.Device));
    }

    [Fact]
    public void Stacked_bidirectional_LSTMs_on_a_padded_batch_match_the_CPU()
    {
        using var cpu = new LstmNet(seed: 45);
        using var host = new LstmNet(seed: 45);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seq: 7, vocabulary: 30, seed: 8);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(2, 5, 30, 3, 9);
        dev.TrainStep(ids, labels, mask, 2, 5);
        long before = f.Device.LaunchCount;
        dev.TrainStep(ids, labels, mask, 2, 5);
        Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before);
    }

    [Fact]
    public void GRUs_with_and_without_biases_match_the_CPU()
    {
        using var cpu = new GruNet(seed: 46);
        using var host = new GruNet(seed: 46);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 4, seq: 6, vocabulary: 30, seed: 10);
    }

    [Fact]
    public void A_three_layer_LSTM_over_a_fixed_length_matches_the_CPU()
    {
        using var cpu = new FixedLstmNet(seed: 47);
        using var host = new FixedLstmNet(seed: 47);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seed: 11);
    }

    [Fact]
    public void Arithmetic_between_a_sequence_and_a_per_sample_vector_matches_the_CPU()
    {
        using var cpu = new SeqBroadcastNet(seed: 48);
        using var host = new SeqBroadcastNet(seed: 48);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seq: 6, vocabulary: 30, seed: 12);
    }

    /// <summary>A network of several inputs or outputs: one step from the same TensorBatch on the CPU and the device.</summary>
    private static void MultiStepMatches(IMultiNetwork cpu, IMultiNetwork dev, ParameterStore host, TensorBatch batch)
    {
        float[][] Buffers() => cpu.Outputs.Select(o => new float[batch.Count * o.Size * (o.IsSequence ? cpu.MaxSequence : 1)]).ToArray();
        var cpuOut = Buffers(); var devOut = Buffers();
        var cpuLosses = new float[cpu.Losses.Count]; var devLosses = new float[cpu.Losses.Count];
        float a = cpu.TrainStep(batch, cpuOut, cpuLosses);
        float b = dev.TrainStep(batch, devOut, devLosses);
        Assert.Equal(a, b, 1e-4 * (1 + Math.Abs(a)));
        for (int i = 0; i < cpuLosses.Length; i++) Assert.Equal(cpuLosses[i], devLosses[i], 1e-4 * (1 + Math.Abs(cpuLosses[i])));
        for (int o = 0; o < cpuOut.Length; o++) Relative(cpuOut[o], devOut[o], 1e-4, "output " + cpu.Outputs[o].Name);
        ((DeviceNetwork)dev).CopyGradientsToHost();
        GradientsMatch(cpu.Parameters, host);
        Assert.Equal(cpu.EvaluateLoss(batch, cpuOut, cpuLosses), dev.EvaluateLoss(batch, devOut, devLosses), 1e-4 * (1 + Math.Abs(a)));
    }

    [Fact]
    public void Several_inputs_of_floats_and_token_ids_match_the_CPU_and_ids_are_checked_per_input()
    {
        using var cpu = new TwoInputNet(seed: 49);
        using var host = new TwoInputNet(seed: 49);
        using var dev = host.ToDevice(f.Device);
        var data = new TensorDataset(5)
            .Add("image", DeviceFixture.Random(5 * 36, 1), 1, 6, 6)
            .Add("tags", [1, 2, 3, 8, 0, 0, 4, 4, 4, 7, 6, 5, 2, 2, 1], 3)
            .Add("meta", DeviceFixture.Random(5 * 4, 2), 4)
            .Add("labels", [0, 2, 1, 1, 0]);
        var batch = new TensorDataLoader(data, 5, shuffle: false).Epoch(0).First();
        MultiStepMatches(cpu, dev, host.Parameters, batch);
        var bad = new TensorDataset(1).Add("image", new float[36], 1, 6, 6).Add("tags", [1, 9, 0], 3).Add("meta", new float[4], 4).Add("labels", [0]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => dev.TrainStep(new TensorDataLoader(bad, 1, shuffle: false).Epoch(0).First(), [new float[3]], default));
        Assert.Contains("token id 9 at position 1 of 'tags'", e.Message);
        Assert.Contains("TensorBatch", Assert.Throws<InvalidOperationException>(() => dev.Forward(new float[36], 1, new float[3])).Message);
        // Forward over one span per input, as the CPU class's, token ids checked on the way up.
        var image = DeviceFixture.Random(5 * 36, 1); int[] tags = [1, 2, 3, 8, 0, 0, 4, 4, 4, 7, 6, 5, 2, 2, 1]; var meta = DeviceFixture.Random(5 * 4, 2);
        var expected = new float[5 * 3]; var got = new float[expected.Length];
        cpu.Forward(image, tags, meta, 5, expected); // a training step computes gradients; no optimizer has moved the weights
        dev.Forward(image, tags, meta, 5, got);
        Relative(expected, got, 1e-5, "Forward over spans");
        Assert.Contains("token id 9", Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward(image, tags.Select(t => t == 8 ? 9 : t).ToArray(), meta, 5, got)).Message);
    }

    [Fact]
    public void Two_heads_and_an_output_without_a_loss_match_the_CPU_and_train_under_the_Trainer()
    {
        using var cpu = new TwoHeadNet(seed: 50);
        using var host = new TwoHeadNet(seed: 50);
        using var dev = host.ToDevice(f.Device);
        var data = new TensorDataset(12)
            .Add("input", DeviceFixture.Random(12 * 64, 3), 1, 8, 8)
            .Add("digitLabels", Enumerable.Range(0, 12).Select(i => i % 3).ToArray())
            .Add("boxTargets", DeviceFixture.Random(12 * 4, 4).Select(v => (v + 1) / 2).ToArray(), 4);
        MultiStepMatches(cpu, dev, host.Parameters, new TensorDataLoader(data, 6, shuffle: false).Epoch(0).First());
        // Forward over spans: one per output, as the CPU class's.
        var x = DeviceFixture.Random(6 * 64, 3);
        float[] cd = new float[18], cb = new float[24], cf = new float[96], dd = new float[18], db = new float[24], df = new float[96];
        cpu.Forward(x, 6, cd, cb, cf);
        dev.Forward(x, 6, dd, db, df);
        Relative(cd, dd, 1e-5, "digit"); Relative(cb, db, 1e-5, "box"); Relative(cf, df, 1e-5, "features");
        Assert.Contains("output 'box' has 23 floats", Assert.Throws<ArgumentException>(() => dev.Forward(x, 6, dd, new float[23], df)).Message);
        var outputs = new[] { new float[6 * 3], new float[6 * 4], new float[6 * 16] };
        dev.TrainStep(new TensorDataLoader(data, 6, shuffle: false).Epoch(0).First(), outputs, default);
        long before = f.Device.LaunchCount;
        dev.TrainStep(new TensorDataLoader(data, 6, shuffle: false).Epoch(0).First(), outputs, default);
        Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before); // two losses: two launches each

        using var cpu2 = new TwoHeadNet(seed: 51);
        using var host2 = new TwoHeadNet(seed: 51);
        using var dev2 = host2.ToDevice(f.Device);
        using var devOpt = new DeviceAdamW(dev2, 1e-2f);
        var a = new Trainer(cpu2, new AdamW(cpu2.Parameters, 1e-2f), new TrainerOptions { Epochs = 3 }).Fit(new TensorDataLoader(data, 4, shuffle: true, seed: 1), null);
        var b = new Trainer(dev2, devOpt, new TrainerOptions { Epochs = 3 }).Fit(new TensorDataLoader(data, 4, shuffle: true, seed: 1), null);
        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(a[e].TrainLoss, b[e].TrainLoss, 1e-4 * (1 + a[e].TrainLoss));
            for (int l = 0; l < 2; l++) Assert.Equal(a[e].TrainLosses[l], b[e].TrainLosses[l], 1e-4 * (1 + a[e].TrainLosses[l]));
        }
        Assert.True(b[^1].TrainLoss < b[0].TrainLoss, "the loss should fall");
    }

    /// <summary>Pairs of token ids and types over up to 10 positions (rows of 2–8 real tokens), per-token targets and a class.</summary>
    private static TensorDataset Pairs(int n, int seed)
    {
        const int positions = 10;
        var r = new Random(seed);
        var ids = new int[n * positions]; var types = new int[n * positions]; var mask = new int[n * positions];
        var labels = new int[n]; var tokenTargets = new float[n * positions * 2];
        for (int i = 0; i < n; i++)
        {
            int length = 2 + i % 7;
            labels[i] = i % 3;
            for (int t = 0; t < length; t++)
            {
                ids[i * positions + t] = r.Next(50); types[i * positions + t] = t < length / 2 ? 0 : 1; mask[i * positions + t] = 1;
                tokenTargets[(i * positions + t) * 2] = (float)r.NextDouble(); tokenTargets[(i * positions + t) * 2 + 1] = -(float)r.NextDouble();
            }
        }
        return new TensorDataset(n).Add("ids", ids, positions).Add("types", types, positions).Add("attention_mask", mask, positions)
            .Add("labels", labels).Add("sentenceLabels", labels).Add("tokensTargets", tokenTargets, positions, 2);
    }

    [Fact]
    public void Two_sequence_inputs_and_per_token_outputs_match_the_CPU_on_batches_cut_to_their_longest_row()
    {
        var data = Pairs(12, 3);
        using (var cpu = new PairNet(seed: 52)) using (var host = new PairNet(seed: 52)) using (var dev = host.ToDevice(f.Device))
            MultiStepMatches(cpu, dev, host.Parameters, new TensorDataLoader(data, 5, shuffle: false).Epoch(0).First());
        using var cpu2 = new PairTwoHeadNet(seed: 53);
        using var host2 = new PairTwoHeadNet(seed: 53);
        using var dev2 = host2.ToDevice(f.Device);
        MultiStepMatches(cpu2, dev2, host2.Parameters, new TensorDataLoader(data, 6, shuffle: false).Epoch(0).First());

        // Forward over spans with the mask and the sequence length, as the CPU class's: 3 samples of up to 7 positions.
        const int batch = 3, seq = 7;
        var r = new Random(4);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => r.Next(50)).ToArray();
        var types = Enumerable.Range(0, batch * seq).Select(i => i % seq < 3 ? 0 : 1).ToArray();
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - i / seq * 2 ? 1 : 0).ToArray();
        float[] ct = new float[batch * seq * 2], cs = new float[batch * 3], dt = new float[ct.Length], ds = new float[cs.Length];
        cpu2.Forward(ids, types, mask, batch, seq, ct, cs);
        dev2.Forward(ids, types, mask, batch, seq, dt, ds);
        Relative(ct, dt, 1e-5, "tokens"); Relative(cs, ds, 1e-5, "sentence");
        Assert.Contains("output 'tokens' has 41 floats, but batch 3 × [7, 2] needs 42", Assert.Throws<ArgumentException>(() => dev2.Forward(ids, types, mask, batch, seq, new float[41], ds)).Message);
        Assert.Contains("input 'types' has 20 values, but batch 3 × [7] needs 21", Assert.Throws<ArgumentException>(() => dev2.Forward(ids, types[1..], mask, batch, seq, dt, ds)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => dev2.Forward(ids, types, mask, batch, 11, dt, ds)); // past MaxSequence
        var unmasked = new float[ct.Length]; var unmaskedDev = new float[ct.Length];
        cpu2.Forward(ids, types, default, batch, seq, unmasked, cs);
        dev2.Forward(ids, types, default, batch, seq, unmaskedDev, ds);
        Relative(unmasked, unmaskedDev, 1e-5, "tokens without a mask");

        var a = new Trainer(cpu2, new AdamW(cpu2.Parameters, 5e-3f), new TrainerOptions { Epochs = 2 }).Fit(new TensorDataLoader(data, 4, seed: 2), null);
        using var fresh = new PairTwoHeadNet(seed: 53);
        using var freshDev = fresh.ToDevice(f.Device);
        using var freshOpt = new DeviceAdamW(freshDev, 5e-3f);
        var b = new Trainer(freshDev, freshOpt, new TrainerOptions { Epochs = 2 }).Fit(new TensorDataLoader(data, 4, seed: 2), null);
        for (int e = 0; e < 2; e++) Assert.Equal(a[e].TrainLoss, b[e].TrainLoss, 1e-4 * (1 + a[e].TrainLoss));
    }

    [Fact]
    public void Float_sequences_with_per_position_targets_or_class_labels_match_the_CPU()
    {
        const int batch = 3, seq = 6;
        var (_, mask, labels) = SequenceBatch(batch, seq, 2, 2, 13);
        using (var cpu = new SeqRegressor(seed: 54)) using (var host = new SeqRegressor(seed: 54)) using (var dev = host.ToDevice(f.Device))
        {
            var x = DeviceFixture.Random(batch * seq * 4, 14);
            var t = DeviceFixture.Random(batch * seq * 2, 15);
            var cpuOut = new float[batch * seq * 2]; var devOut = new float[cpuOut.Length];
            cpu.Forward(x, mask, batch, seq, cpuOut);
            dev.Forward(x, mask, batch, seq, devOut);
            Relative(cpuOut, devOut, 1e-4, "per-position outputs");
            StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(x, t, mask, batch, seq, o), o => dev.TrainStep(x, t, mask, batch, seq, o),
                () => cpu.EvaluateLoss(x, t, mask, batch, seq), () => dev.EvaluateLoss(x, t, mask, batch, seq), cpuOut.Length, "per-position outputs");
            Assert.Contains("with the attention mask", Assert.Throws<InvalidOperationException>(() => dev.Forward(new float[40], 1, new float[20])).Message);
            Assert.Contains("needs 72", Assert.Throws<ArgumentException>(() => dev.TrainStep(x[..^4], t, mask, batch, seq)).Message);
        }
        using (var cpu = new SeqKlNet(seed: 56)) using (var host = new SeqKlNet(seed: 56)) using (var dev = host.ToDevice(f.Device))
        {
            var x = DeviceFixture.Random(batch * seq * 4, 17);
            var t = Distributions(batch * seq, 3, 18);
            var (a, cpuOut) = StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(x, t, mask, batch, seq, o), o => dev.TrainStep(x, t, mask, batch, seq, o),
                () => cpu.EvaluateLoss(x, t, mask, batch, seq), () => dev.EvaluateLoss(x, t, mask, batch, seq), batch * seq * 3, "log-probabilities");
            // 'batchmean' divides by the batch, not by its positions: the loss is T times the positions' mean.
            double sum = 0;
            for (int i = 0; i < t.Length; i++) if (t[i] > 0) sum += t[i] * (Math.Log(t[i]) - cpuOut[i]);
            Assert.Equal(sum / batch, a, 1e-4 * (1 + Math.Abs(a)));
        }
        using (var cpu = new FloatSequenceNet(seed: 55)) using (var host = new FloatSequenceNet(seed: 55)) using (var dev = host.ToDevice(f.Device))
        {
            var x = DeviceFixture.Random(batch * seq * 3, 16);
            var cpuOut = new float[batch * 2]; var devOut = new float[cpuOut.Length];
            float a = cpu.TrainStep(x, labels, mask, batch, seq, cpuOut);
            float b = dev.TrainStep(x, labels, mask, batch, seq, devOut);
            Assert.Equal(a, b, 1e-4 * (1 + Math.Abs(a)));
            Relative(cpuOut, devOut, 1e-4, "logits");
            dev.CopyGradientsToHost();
            GradientsMatch(cpu.Parameters, host.Parameters);
        }
    }

    [Fact]
    public void A_cosine_embedding_loss_of_two_outputs_matches_the_CPU()
    {
        using var cpu = new SiameseNet(seed: 56);
        using var host = new SiameseNet(seed: 56);
        using var dev = host.ToDevice(f.Device);
        var data = new TensorDataset(6)
            .Add("left", DeviceFixture.Random(36, 1), 6).Add("right", DeviceFixture.Random(36, 2), 6)
            .Add("aTargets", [1f, -1f, 1f, -1f, -1f, 1f]).Add("kindLabels", [0, 1, 2, 2, 1, 0]);
        MultiStepMatches(cpu, dev, host.Parameters, new TensorDataLoader(data, 6, shuffle: false).Epoch(0).First());
    }

    [Fact]
    public void A_loss_method_beside_another_output_matches_the_CPU()
    {
        using var cpu = new TwoOutputMethodNet(seed: 59);
        using var host = new TwoOutputMethodNet(seed: 59);
        using var dev = host.ToDevice(f.Device);
        var data = new TensorDataset(5)
            .Add("input", DeviceFixture.Random(20, 1), 4)
            .Add("aTargets", DeviceFixture.Random(10, 2), 2).Add("bTargets", DeviceFixture.Random(10, 3), 2);
        MultiStepMatches(cpu, dev, host.Parameters, new TensorDataLoader(data, 5, shuffle: false).Epoch(0).First());
        // Inference does not run the loss's ops, and needs no targets.
        var outputs = new[] { new float[10], new float[10] };
        dev.Forward(new TensorDataLoader(new TensorDataset(5).Add("input", DeviceFixture.Random(20, 1), 4), 5, shuffle: false).Epoch(0).First(), outputs);
        var expected = new[] { new float[10], new float[10] };
        cpu.Forward(DeviceFixture.Random(20, 1), 5, expected[0], expected[1]);
        Relative(expected[0], outputs[0], 1e-4, "a"); Relative(expected[1], outputs[1], 1e-4, "b");
    }

    [Fact]
    public void A_loss_method_over_a_sequence_matches_the_CPU()
    {
        const int batch = 3, seq = 6;
        var (_, mask, labels) = SequenceBatch(batch, seq, 2, 3, 21);
        using (var cpu = new SeqMethodNet(seed: 60)) using (var host = new SeqMethodNet(seed: 60)) using (var dev = host.ToDevice(f.Device))
        {
            var x = DeviceFixture.Random(batch * seq * 4, 22);
            var t = DeviceFixture.Random(batch * seq * 2, 23);
            StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(x, t, mask, batch, seq, o), o => dev.TrainStep(x, t, mask, batch, seq, o),
                () => cpu.EvaluateLoss(x, t, mask, batch, seq), () => dev.EvaluateLoss(x, t, mask, batch, seq), batch * seq * 2, "outputs");
        }
        using (var cpu = new SeqLabelMethodNet(seed: 61)) using (var host = new SeqLabelMethodNet(seed: 61)) using (var dev = host.ToDevice(f.Device))
        {
            var (ids, idMask, _) = SequenceBatch(batch, seq, 20, 3, 24);
            var cpuOut = new float[batch * 3]; var devOut = new float[cpuOut.Length];
            float a = cpu.TrainStep(ids, labels, idMask, batch, seq, cpuOut);
            float b = dev.TrainStep(ids, labels, idMask, batch, seq, devOut);
            Assert.Equal(a, b, 1e-5 * (1 + Math.Abs(a)));
            Relative(cpuOut, devOut, 1e-4, "logits");
            dev.CopyGradientsToHost();
            GradientsMatch(cpu.Parameters, host.Parameters);
            long before = f.Device.LaunchCount;
            dev.TrainStep(ids, labels, idMask, batch, seq, devOut);
            Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before);
        }
    }

    [Fact]
    public void Float_targets_over_token_ids_match_the_CPU()
    {
        const int batch = 3, seq = 7;
        var (ids, mask, _) = SequenceBatch(batch, seq, 20, 2, 31);
        using (var cpu = new TokenRegressor(seed: 62)) using (var host = new TokenRegressor(seed: 62)) using (var dev = host.ToDevice(f.Device))
        {
            var t = DeviceFixture.Random(batch, 32);
            StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(ids, t, mask, batch, seq, o), o => dev.TrainStep(ids, t, mask, batch, seq, o),
                () => cpu.EvaluateLoss(ids, t, mask, batch, seq), () => dev.EvaluateLoss(ids, t, mask, batch, seq), batch, "scores");
            Assert.Contains("float targets", Assert.Throws<InvalidOperationException>(() => dev.TrainStep(ids, new int[batch], mask, batch, seq)).Message);
            Assert.Contains("targets have 2 floats", Assert.Throws<ArgumentException>(() => dev.TrainStep(ids, new float[2], mask, batch, seq)).Message);
        }
        using (var cpu = new FixedTokenRegressor(seed: 64)) using (var host = new FixedTokenRegressor(seed: 64)) using (var dev = host.ToDevice(f.Device))
        {
            var fixedIds = ids.Take(batch * 5).Select(i => i % 12).ToArray();
            var t = DeviceFixture.Random(batch * 2, 34);
            StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(fixedIds, t, batch, o), o => dev.TrainStep(fixedIds, t, batch, o),
                () => cpu.EvaluateLoss(fixedIds, t, batch), () => dev.EvaluateLoss(fixedIds, t, batch), batch * 2, "scores");
        }
        using (var cpu = new TokenTagger(seed: 63)) using (var host = new TokenTagger(seed: 63)) using (var dev = host.ToDevice(f.Device))
        {
            var t = DeviceFixture.Random(batch * seq * 2, 33).Select(v => v > 0 ? 1f : 0f).ToArray();
            StepMatches(cpu.Parameters, dev, host.Parameters, o => cpu.TrainStep(ids, t, mask, batch, seq, o), o => dev.TrainStep(ids, t, mask, batch, seq, o),
                () => cpu.EvaluateLoss(ids, t, mask, batch, seq), () => dev.EvaluateLoss(ids, t, mask, batch, seq), batch * seq * 2, "tag logits");
        }
    }

    [Fact]
    public void Dropout2d_drops_whole_channels_on_the_device_and_is_off_in_evaluation()
    {
        const int batch = 6, planes = batch * 3;
        using var cpu = new Dropout2dNet(seed: 65);
        using var host = new Dropout2dNet(seed: 65);
        using var dev = host.ToDevice(f.Device);
        var x = DeviceFixture.Random(batch * 48, 40);
        var eval = new float[batch * 48]; var cpuEval = new float[eval.Length];
        cpu.Forward(x, batch, cpuEval);
        dev.Forward(x, batch, eval);
        Relative(cpuEval, eval, 1e-4, "evaluation outputs");
        var train = new float[eval.Length];
        dev.TrainStep(x, new float[eval.Length], batch, train);
        int dropped = 0;
        for (int plane = 0; plane < planes; plane++)
        {
            bool zero = train[plane * 16] == 0f;
            dropped += zero ? 1 : 0;
            for (int j = 0; j < 16; j++)
            {
                int i = plane * 16 + j;
                Assert.Equal(zero ? 0f : 2f * eval[i], train[i], 1e-5f); // kept: scaled by 1/(1 − p)
            }
        }
        Assert.InRange(dropped, 2, planes - 2);
    }

    [Fact]
    public void A_network_without_a_loss_runs_inference_on_the_device()
    {
        const int batch = 3, seq = 6;
        var (_, mask, _) = SequenceBatch(batch, seq, 2, 2, 41);
        using var cpu = new MiniBertLayer(seed: 66);
        using var host = new MiniBertLayer(seed: 66);
        using var dev = host.ToDevice(f.Device);
        var x = DeviceFixture.Random(batch * seq * 16, 42);
        var expected = new float[batch * seq * 16]; var actual = new float[expected.Length];
        cpu.Forward(x, mask, batch, seq, expected);
        dev.Forward(x, mask, batch, seq, actual);
        Relative(expected, actual, 1e-4, "encoder layer outputs");
        var e = Assert.Throws<InvalidOperationException>(() => dev.TrainStep(x, new float[expected.Length], mask, batch, seq));
        Assert.Contains("has no loss", e.Message);

        using var conv = new FeatureConv(seed: 67);
        using var convHost = new FeatureConv(seed: 67);
        using var convDev = convHost.ToDevice(f.Device);
        var images = DeviceFixture.Random(4 * 50, 43);
        var features = new float[4 * 3]; var devFeatures = new float[features.Length];
        conv.Forward(images, 4, features);
        convDev.Forward(images, 4, devFeatures);
        Relative(features, devFeatures, 1e-4, "features (BatchNorm's running statistics)");
        Assert.Contains("has no loss", Assert.Throws<InvalidOperationException>(() => convDev.TrainStep(images, new int[4], 4)).Message);
    }

    [Fact]
    public void Chunk_concat_and_permute_along_a_sequence_match_the_CPU()
    {
        using var cpu = new SeqPiecesNet(seed: 68);
        using var host = new SeqPiecesNet(seed: 68);
        SequenceStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 3, seq: 7, vocabulary: 20, seed: 44);
        var (ids, mask, labels) = SequenceBatch(3, 7, 20, 3, 44);
        using var dev = host.ToDevice(f.Device);
        dev.TrainStep(ids, labels, mask, 3, 7);
        long before = f.Device.LaunchCount;
        dev.TrainStep(ids, labels, mask, 3, 7);
        Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before);
    }

    [Fact]
    public void A_loss_method_on_class_indices_matches_the_CPU()
    {
        using var cpu = new FocalNet(seed: 58);
        using var host = new FocalNet(seed: 58);
        OneStepMatches(cpu, host, n => n.ToDevice(f.Device), batch: 5, seed: 12);
        LaunchesAsDeclared(host.ToDevice(f.Device), host, 13);
    }

    [Fact]
    public void Dropout_in_and_after_attention_is_off_in_evaluation_and_reproducible_in_training()
    {
        using var cpu = new DropBert(seed: 25);
        using var host = new DropBert(seed: 25);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(3, 8, 30, 2, 3);
        var eval = new float[6]; var devEval = new float[6];
        cpu.Forward(ids, mask, 3, 8, eval);
        dev.Forward(ids, mask, 3, 8, devEval);
        Relative(eval, devEval, 1e-4, "evaluation-mode logits (dropout off)");
        Assert.Equal(cpu.EvaluateLoss(ids, labels, mask, 3, 8), dev.EvaluateLoss(ids, labels, mask, 3, 8), 1e-4);

        var trained = new float[6];
        dev.TrainStep(ids, labels, mask, 3, 8, trained);
        Assert.NotEqual(devEval, trained);
        using var twinHost = new DropBert(seed: 25);
        using var twin = twinHost.ToDevice(f.Device);
        var again = new float[6];
        twin.TrainStep(ids, labels, mask, 3, 8, again);
        Assert.Equal(trained, again);
        dev.CopyGradientsToHost(); twin.CopyGradientsToHost();
        Assert.Equal(host.Parameters.Gradients.ToArray(), twinHost.Parameters.Gradients.ToArray());
    }

    [Fact]
    public void A_layer_norm_that_applies_a_dense_layers_bias_and_dropout_trains_as_the_chain_add_and_norm_do()
    {
        // DropNormNet's norms take each branch's chain (bias, dropout) and residual add in; its twin whose sums are read
        // once more cannot, and runs them as kernels of their own, drawing the same masks (the dropouts' op ids are
        // the same). Evaluation is the CPU's; a training step's loss, logits and every gradient are the unfused path's.
        using var cpu = new DropNormNet(seed: 80);
        using var host = new DropNormNet(seed: 80);
        using var refHost = new DropNormNetUnfused(seed: 80);
        refHost.Parameters.CopyFrom(host.Parameters);
        using var dev = host.ToDevice(f.Device);
        using var reference = refHost.ToDevice(f.Device);
        Assert.True(reference.LaunchesPerTrainStep - dev.LaunchesPerTrainStep >= 8, $"{dev.LaunchesPerTrainStep} launches fused, {reference.LaunchesPerTrainStep} not");
        var (ids, mask, labels) = SequenceBatch(3, 7, 30, 3, 81);
        var eval = new float[9]; var devEval = new float[9];
        cpu.Forward(ids, mask, 3, 7, eval);
        dev.Forward(ids, mask, 3, 7, devEval);
        Relative(eval, devEval, 1e-4, "evaluation-mode logits (dropout off)");
        for (int step = 0; step < 2; step++)
        {
            var trained = new float[9]; var expected = new float[9];
            float loss = dev.TrainStep(ids, labels, mask, 3, 7, trained);
            float expectedLoss = reference.TrainStep(ids, labels, mask, 3, 7, expected);
            Assert.Equal(expectedLoss, loss, 1e-5);
            Relative(expected, trained, 1e-5, $"step {step}: training-mode logits");
            Assert.NotEqual(devEval, trained);
            dev.CopyGradientsToHost(); reference.CopyGradientsToHost();
            foreach (var p in host.Parameters.Parameters)
                Relative(refHost.Parameters.Gradient(refHost.Parameters[p.Name]), host.Parameters.Gradient(p), 1e-5, $"step {step}: gradient of {p.Name}");
        }
    }

    [Fact]
    public void A_sequence_batch_is_checked_as_the_CPU_network_checks_it()
    {
        using var host = new MiniBert(seed: 1);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(2, 5, 50, 3, 1);
        var output = new float[6];
        Assert.Contains("sequence length must be in [1, 12]", Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward(new int[26], [], 2, 13, output)).Message);
        Assert.Contains("the mask has 9 values", Assert.Throws<ArgumentException>(() => dev.Forward(ids, mask[..9], 2, 5, output)).Message);
        var bad = (int[])mask.Clone(); bad[3] = 2;
        Assert.Contains("holds 2 at [0, 3]", Assert.Throws<ArgumentException>(() => dev.TrainStep(ids, labels, bad, 2, 5)).Message);
        var outside = (int[])ids.Clone(); outside[7] = 50;
        Assert.Contains("token id 50 at position 7", Assert.Throws<ArgumentOutOfRangeException>(() => dev.EvaluateLoss(outside, labels, mask, 2, 5)).Message);
        Assert.Contains("with the attention mask and the sequence length", Assert.Throws<InvalidOperationException>(() => dev.Forward(new int[24], 2, output)).Message);
        using var tokens = new TokenNet(seed: 1);
        using var fixedDev = tokens.ToDevice(f.Device);
        Assert.Contains("not sequences", Assert.Throws<InvalidOperationException>(() => fixedDev.Forward(new int[12], [], 2, 6, output)).Message);
    }

    [Fact]
    public void A_MiniBert_training_step_launches_what_it_declares()
    {
        using var host = new MiniBert(seed: 3);
        using var dev = host.ToDevice(f.Device);
        var (ids, mask, labels) = SequenceBatch(2, 6, 50, 3, 2);
        dev.TrainStep(ids, labels, mask, 2, 6);
        long before = f.Device.LaunchCount;
        dev.TrainStep(ids, labels, mask, 2, 6);
        Assert.Equal(dev.LaunchesPerTrainStep, f.Device.LaunchCount - before);
        // Fused: the chains, and each layer norm taking in its residual add and the dense layer's bias before it (the
        // add's launch and its gradient's two, the bias's launch forward and its sum backward); one kernel per op: 128.
        Assert.Equal(94, dev.LaunchesPerTrainStep);
        Assert.Equal(128, dev.LaunchesPerTrainStepUnfused);
    }

    [Fact]
    public void Devices_open_by_kind_and_never_fall_back_in_silence()
    {
        Assert.Throws<ArgumentException>(() => GpuDevice.Open("tpu"));
        Assert.Contains("cuda:N", Assert.Throws<ArgumentException>(() => GpuDevice.Open("cuda:x")).Message);
        Assert.Throws<ArgumentException>(() => GpuDevice.Open("cuda:-1"));
        using var auto = GpuDevice.Open("auto");
        if (!auto.IsCuda)
        {
            Assert.Equal("cpu-accelerator", auto.Kind);
            var e = Assert.Throws<InvalidOperationException>(() => GpuDevice.Open("cuda"));
            Assert.Contains("No CUDA GPU", e.Message);
            Assert.Contains("No CUDA GPU", Assert.Throws<InvalidOperationException>(() => GpuDevice.Open("cuda:1")).Message);
        }
        else Assert.Contains("no CUDA GPU 4096", Assert.Throws<InvalidOperationException>(() => GpuDevice.Open("cuda:4096")).Message);
        Assert.StartsWith(auto.Kind + ": ", auto.ToString());
        if (!auto.IsCuda) Assert.Contains("CPU accelerator", auto.GemmBackend);
    }

    [Fact]
    public void cuBLAS_is_looked_for_where_CUDA_conda_and_PyTorch_wheels_keep_it()
    {
        var root = Directory.CreateTempSubdirectory("cnets-cublas-").FullName;
        try
        {
            string Touch(params string[] parts)
            {
                var path = Path.Combine([root, .. parts]);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, "");
                return path;
            }
            string wheel = Touch("home", ".local", "lib", "python3.11", "site-packages", "nvidia", "cublas", "lib", "libcublas.so.12");
            string conda = Touch("conda", "lib", "libcublas.so.11");
            string chosen = Touch("chosen", "libcublas.so.12");
            var env = new Dictionary<string, string> { ["CONDA_PREFIX"] = Path.Combine(root, "conda") };
            var found = CuBlasLibrary.Candidates(v => env.GetValueOrDefault(v), Path.Combine(root, "home")).Where(p => p.StartsWith(root, StringComparison.Ordinal)).ToList();
            Assert.Equal([conda, wheel], found);
            env["COMPILED_NETS_CUBLAS"] = Path.Combine(root, "chosen");   // a folder
            Assert.Equal(chosen, CuBlasLibrary.Candidates(v => env.GetValueOrDefault(v), Path.Combine(root, "home")).First());
            env["COMPILED_NETS_CUBLAS"] = wheel;                           // a file
            Assert.Equal(wheel, CuBlasLibrary.Candidates(v => env.GetValueOrDefault(v), Path.Combine(root, "home")).First());
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

/// <summary>The <see cref="Trainer"/> over a device twin and a device optimizer: the same epochs as over the CPU
/// network, with a schedule, gradient clipping, accumulated micro-batches, checkpoints and an exact resume.</summary>
public sealed class DeviceTrainerTests(DeviceFixture f) : IClassFixture<DeviceFixture>
{
    /// <summary>Token sequences of lengths 3–12 whose label is a function of their tokens (learnable).</summary>
    private static TextDataset Emails(int count, int seed)
    {
        var r = new Random(seed);
        var ids = new List<int[]>();
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            var x = Enumerable.Range(0, r.Next(3, 13)).Select(_ => r.Next(1, 50)).ToArray();
            ids.Add(x);
            labels[i] = x.Count(t => t < 17) % 3;
        }
        return new TextDataset(ids, labels, 3);
    }

    private static TrainerOptions Options(string dir, int epochs, bool resume = false) => new()
    {
        Epochs = epochs, MaxGradNorm = 0.5f, AccumulationSteps = 2, OutputDirectory = dir, Resume = resume,
        Schedule = new LinearWarmupDecaySchedule(3e-3f, 4, 40),
    };

    private static string Temp() => Directory.CreateTempSubdirectory("cnets-device-trainer-").FullName;

    [Fact]
    public void A_device_twin_trains_under_the_Trainer_as_the_CPU_network_does_and_resumes_exactly()
    {
        var train = Emails(22, 1); var val = Emails(8, 2);
        TextDataLoader Train() => new(train, 4, 12, shuffle: true, seed: 3);
        TextDataLoader Val() => new(val, 8, 12, shuffle: false);
        string cpuDir = Temp(), devDir = Temp(), resumeDir = Temp();
        try
        {
            using var cpu = new MiniBert(seed: 30);
            var cpuOpt = new AdamW(cpu.Parameters, 3e-3f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
            var cpuHistory = new Trainer(cpu, cpuOpt, Options(cpuDir, 3)).Fit(Train(), Val());

            using var host = new MiniBert(seed: 30);
            using var dev = host.ToDevice(f.Device);
            using var devOpt = new DeviceAdamW(dev, 3e-3f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
            var trainer = new Trainer(dev, devOpt, Options(devDir, 3));
            var devHistory = trainer.Fit(Train(), Val());
            Assert.Equal(3, devHistory.Count);
            for (int e = 0; e < 3; e++)
            {
                Assert.Equal(cpuHistory[e].TrainLoss, devHistory[e].TrainLoss, 2e-4 * (1 + cpuHistory[e].TrainLoss));
                Assert.Equal(cpuHistory[e].ValidationLoss, devHistory[e].ValidationLoss, 2e-4 * (1 + cpuHistory[e].ValidationLoss));
                Assert.Equal(cpuHistory[e].LearningRate, devHistory[e].LearningRate);
            }
            Assert.True(devHistory[^1].TrainLoss < devHistory[0].TrainLoss, "the loss should fall");
            // The best epoch's weights are restored on the host store and on the device alike.
            var hostOut = new float[8 * 3]; var devOut = new float[8 * 3];
            var batch = Val().Epoch(0).First();
            host.Forward(batch.IdSpan, batch.MaskSpan, batch.Count, batch.Sequence, hostOut);
            dev.Forward(batch.IdSpan, batch.MaskSpan, batch.Count, batch.Sequence, devOut);
            Assert.Equal(hostOut, devOut, (a, b) => Math.Abs(a - b) <= 1e-4f * (1 + Math.Abs(a)));
            // The device's checkpoint holds AdamW's state under the CPU optimizer's names: the CPU network resumes from it.
            using var reader = new MiniBert(seed: 1);
            Checkpoint.Load(Path.Combine(devDir, "last.safetensors"), reader.Parameters, new AdamW(reader.Parameters));

            // Two epochs, then a fresh twin and optimizer resume for the third: the same epoch as without the stop.
            IReadOnlyList<EpochMetrics> firstTwo;
            using (var first = new MiniBert(seed: 30))
            using (var firstDev = first.ToDevice(f.Device))
            using (var firstOpt = new DeviceAdamW(firstDev, 3e-3f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm })
                firstTwo = new Trainer(firstDev, firstOpt, Options(resumeDir, 2)).Fit(Train(), Val());
            // The same seeds, data and steps: the first two epochs repeat bit for bit (a difference here is the run, not the resume).
            Assert.Equal(devHistory.Take(2).Select(m => (m.TrainLoss, m.ValidationLoss)), firstTwo.Select(m => (m.TrainLoss, m.ValidationLoss)));
            using var second = new MiniBert(seed: 99);
            using var secondDev = second.ToDevice(f.Device);
            using var secondOpt = new DeviceAdamW(secondDev, 3e-3f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
            var resumed = new Trainer(secondDev, secondOpt, Options(resumeDir, 3, resume: true)).Fit(Train(), Val());
            Assert.Single(resumed);
            Assert.Equal(3, resumed[0].Epoch);
            Assert.Equal(devHistory[2].LearningRate, resumed[0].LearningRate);
            Assert.Equal(devHistory[2].TrainLoss, resumed[0].TrainLoss, 1e-5 * (1 + devHistory[2].TrainLoss));
            Assert.Equal(devHistory[2].ValidationLoss, resumed[0].ValidationLoss, 1e-5 * (1 + devHistory[2].ValidationLoss));
        }
        finally
        {
            foreach (var d in new[] { cpuDir, devDir, resumeDir }) Directory.Delete(d, recursive: true);
        }
    }

    [Fact]
    public void An_optimizer_over_another_store_is_refused_and_a_one_rank_job_trains_as_no_job()
    {
        using var a = new MiniBert(seed: 1);
        using var b = new MiniBert(seed: 1);
        using var dev = b.ToDevice(f.Device);
        var e = Assert.Throws<InvalidOperationException>(() => new Trainer(dev, new AdamW(a.Parameters), new TrainerOptions { Epochs = 1 }).Fit(new TextDataLoader(Emails(4, 1), 2, 12), null));
        Assert.Contains("another parameter store", e.Message);
        // Data parallelism takes the device's gradients to the host store for the allreduce and back (MPI runs of two
        // ranks are in the distributed tests): with one rank that round trip changes nothing.
        var histories = new List<IReadOnlyList<EpochMetrics>>();
        foreach (var job in new IDataParallel?[] { null, new OneRank() })
        {
            using var net = new MiniBert(seed: 2);
            using var twin = net.ToDevice(f.Device);
            using var opt = new DeviceAdamW(twin, 3e-3f);
            histories.Add(new Trainer(twin, opt, new TrainerOptions { Epochs = 2, DataParallel = job, RestoreBest = false }).Fit(new TextDataLoader(Emails(8, 1), 4, 12, seed: 1), null));
        }
        for (int epoch = 0; epoch < 2; epoch++) Assert.Equal(histories[0][epoch].TrainLoss, histories[1][epoch].TrainLoss);
    }

    /// <summary>A job of one rank: what data parallelism needs of the Trainer, without MPI.</summary>
    private sealed class OneRank : IDataParallel
    {
        public int Rank => 0;
        public int Ranks => 1;
        public void BroadcastParameters() { }
        public void AverageGradients(int localCount, int globalCount) { }
        public void Sum(Span<double> values) { }
    }
}
