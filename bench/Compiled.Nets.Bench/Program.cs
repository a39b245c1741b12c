using Compiled.Nets.Bench;

// `summary` (default): GEMM GFLOPS and % of the measured FMA peak; `step`: the ConvNet's step and its kernels.
return args.FirstOrDefault() switch
{
    "step" => Step.Run(),
    _ => Summary.Run(args),
};
