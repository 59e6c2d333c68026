// Simulation-only: the core's DMA (core_dma.v) on sim_axi_ram, with the DMA's command and
// data ports at the top, for tb_dma.py (the same test as against cocotbext-axi's AxiRam).
`default_nettype none
module dma_ram_top #(
    parameter integer BUS = 4,  // data bus bytes (core_dma.v)
    parameter integer LB  = 2   // log2(BUS)
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        ram_load,
    input  wire        ram_dump,
    input  wire [31:0] ram_dump_last,
    input  wire        cmd_valid,
    input  wire        cmd_write,
    input  wire [31:0] cmd_addr,
    input  wire [31:0] cmd_len,
    output wire        idle,
    output wire        done,
    output wire             rd_valid,
    output wire [8*BUS-1:0] rd_data,
    output wire [BUS-1:0]   rd_strb,
    output wire [31:0]      rd_word,
    output wire             src_re,
    output wire [31:0]      src_word,
    input  wire [8*BUS-1:0] src_data
);
    wire [31:0] awaddr, araddr;
    wire [7:0]  awlen, arlen;
    wire [8*BUS-1:0] wdata, rdata;
    wire [BUS-1:0]   wstrb;
    wire [2:0]  awsize, arsize, awprot, arprot;
    wire [1:0]  awburst, arburst, bresp, rresp;
    wire [3:0]  awcache, arcache;
    wire [0:0]  awid, arid, bid, rid;
    wire        awlock, arlock, awvalid, awready, wlast, wvalid, wready, bvalid, bready;
    wire        arvalid, arready, rlast, rvalid, rready;
    wire unused_ok = &{1'b0, awcache, arcache, awprot, arprot, awlock, arlock};

    core_dma #(.BUS(BUS), .LB(LB)) u_dma (
        .clk(clk), .rst(rst), .cmd_valid(cmd_valid), .cmd_write(cmd_write),
        .cmd_addr(cmd_addr), .cmd_len(cmd_len), .cmd_post(1'b0), .rd_hold(1'b0), .idle(idle), .wr_busy(),
        .done(done),
        .rd_valid(rd_valid), .rd_data(rd_data), .rd_strb(rd_strb), .rd_word(rd_word),
        .src_re(src_re), .src_word(src_word), .src_data(src_data),
        .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize),
        .m_axi_awburst(awburst), .m_axi_awid(awid), .m_axi_awlock(awlock),
        .m_axi_awcache(awcache), .m_axi_awprot(awprot), .m_axi_awvalid(awvalid),
        .m_axi_awready(awready), .m_axi_wdata(wdata), .m_axi_wstrb(wstrb),
        .m_axi_wlast(wlast), .m_axi_wvalid(wvalid), .m_axi_wready(wready),
        .m_axi_bid(bid), .m_axi_bresp(bresp), .m_axi_bvalid(bvalid), .m_axi_bready(bready),
        .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize),
        .m_axi_arburst(arburst), .m_axi_arid(arid), .m_axi_arlock(arlock),
        .m_axi_arcache(arcache), .m_axi_arprot(arprot), .m_axi_arvalid(arvalid),
        .m_axi_arready(arready), .m_axi_rid(rid), .m_axi_rdata(rdata), .m_axi_rresp(rresp),
        .m_axi_rlast(rlast), .m_axi_rvalid(rvalid), .m_axi_rready(rready)
    );

    sim_axi_ram #(.DATA_W(8 * BUS), .ADDR_W(32), .ID_W(1), .DEPTH((1 << 16) / BUS)) u_ram (
        .clk(clk), .rst(rst), .load(ram_load), .dump(ram_dump), .dump_first(32'd0),
        .dump_last(ram_dump_last),
        .s_axi_awid(awid), .s_axi_awaddr(awaddr), .s_axi_awlen(awlen), .s_axi_awsize(awsize),
        .s_axi_awburst(awburst), .s_axi_awvalid(awvalid), .s_axi_awready(awready),
        .s_axi_wdata(wdata), .s_axi_wstrb(wstrb), .s_axi_wlast(wlast), .s_axi_wvalid(wvalid),
        .s_axi_wready(wready), .s_axi_bid(bid), .s_axi_bresp(bresp), .s_axi_bvalid(bvalid),
        .s_axi_bready(bready), .s_axi_arid(arid), .s_axi_araddr(araddr), .s_axi_arlen(arlen),
        .s_axi_arsize(arsize), .s_axi_arburst(arburst), .s_axi_arvalid(arvalid),
        .s_axi_arready(arready), .s_axi_rid(rid), .s_axi_rdata(rdata), .s_axi_rresp(rresp),
        .s_axi_rlast(rlast), .s_axi_rvalid(rvalid), .s_axi_rready(rready)
    );
endmodule
`default_nettype wire
