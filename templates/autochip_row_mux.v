// autochip row multiplexer: y = rows[sel], ROWS rows of ROW_W bits packed low row first.
// A sel past the last row gives zero.
`default_nettype none
module autochip_row_mux #(
    parameter integer ROWS  = 4,
    parameter integer ROW_W = 32,
    parameter integer SEL_W = 2
) (
    input  wire [ROWS*ROW_W-1:0] rows,
    input  wire [SEL_W-1:0]      sel,
    output reg  [ROW_W-1:0]      y
);
    integer k;
    always @* begin
        y = {ROW_W{1'b0}};
        for (k = 0; k < ROWS; k = k + 1) begin
            if ({1'b0, sel} == k[SEL_W:0]) begin
                y = rows[k*ROW_W +: ROW_W];
            end
        end
    end
endmodule
`default_nettype wire
