using Compiled.Nets.Bench;

// `summary` (default): GEMM GFLOPS, % of the measured FMA peak and libtorch side by side (self-timed medians).
// `step`: the ConvNet's training step and inference vs libtorch, and its heavy kernels.
// `bdn [BenchmarkDotNet args]`: the BenchmarkDotNet suites (e.g. `-- bdn --filter '*'`).
return args.FirstOrDefault() switch
{
    "step" => Step.Run(args),
    "bdn" => Bdn.Run(args[1..]),
    _ => Summary.Run(args),
};
