<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item">
        <xsl:element name="{translate(., 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')}">
          <xsl:attribute name="sku"><xsl:value-of select="@sku"/></xsl:attribute>
          <xsl:attribute name="{concat('q', position())}">yes</xsl:attribute>
          <xsl:value-of select="@qty"/>
        </xsl:element>
      </xsl:for-each>
      <xsl:element name="x:ns-el" namespace="urn:x">
        <xsl:attribute name="y:at" namespace="urn:y">v</xsl:attribute>
      </xsl:element>
      <xsl:element name="plain" namespace="urn:plain"><child/></xsl:element>
    </r>
  </xsl:template>
</xsl:stylesheet>
