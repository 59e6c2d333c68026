// autochip core processing element: one accumulator, two datapaths selected per weight.
//   w = {mode, weight}: mode 0  acc <= acc + a * w          (int MAC; +-1 operands run binary
//                                                              layers exactly: a*w = xnor term)
//                       mode 1  acc <= acc - |a - w|        (AdderNet, only when ADDER = 1)
// A beat with valid adds its term; the tile's last beat (valid & last) puts the finished sum
// into res and restarts the accumulator from zero in the same cycle, so tiles follow each other
// without a gap and res holds a tile's result until the next tile's last beat. The mode bit
// travels down the column with the weight, so one array runs int8, binary and adder layers.
`default_nettype none
module core_pe #(
    parameter integer A_BITS   = 8,
    parameter integer W_BITS   = 8,
    parameter integer ACC_BITS = 32,
    parameter integer ADDER    = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       valid,
    input  wire                       last,
    input  wire [A_BITS-1:0]          a,
    input  wire [W_BITS:0]            w,
    output reg  signed [ACC_BITS-1:0] res
);
    reg signed [ACC_BITS-1:0] acc;
    localparam integer P_BITS = A_BITS + W_BITS;
    localparam integer D_BITS = (A_BITS > W_BITS ? A_BITS : W_BITS) + 1;

    wire signed [W_BITS-1:0]   wv   = w[W_BITS-1:0];
    wire                       mode = w[W_BITS];
    wire signed [P_BITS-1:0]   prod = $signed(a) * wv;
    wire signed [D_BITS-1:0]   ax   = {{(D_BITS-A_BITS){a[A_BITS-1]}}, a};
    wire signed [D_BITS-1:0]   wx   = {{(D_BITS-W_BITS){wv[W_BITS-1]}}, wv};
    wire signed [D_BITS-1:0]   diff = ax - wx;
    wire signed [D_BITS:0]     nabs = diff[D_BITS-1] ? {diff[D_BITS-1], diff} : -{1'b0, diff};
    wire signed [ACC_BITS-1:0] t_mac = {{(ACC_BITS-P_BITS){prod[P_BITS-1]}}, prod};
    wire signed [ACC_BITS-1:0] t_add = {{(ACC_BITS-D_BITS-1){nabs[D_BITS]}}, nabs};
    wire signed [ACC_BITS-1:0] term;

    generate
        if (ADDER != 0) begin : g_dual
            assign term = mode ? t_add : t_mac;
        end else begin : g_mac
            assign term = t_mac;
            wire unused_ok = &{1'b0, mode, t_add};
        end
    endgenerate

    wire signed [ACC_BITS-1:0] sum = acc + term;

    always @(posedge clk) begin
        if (rst) begin
            acc <= {ACC_BITS{1'b0}};
            res <= {ACC_BITS{1'b0}};
        end else if (valid) begin
            if (last) begin
                acc <= {ACC_BITS{1'b0}};
                res <= sum;
            end else begin
                acc <= sum;
            end
        end
    end
endmodule
`default_nettype wire
