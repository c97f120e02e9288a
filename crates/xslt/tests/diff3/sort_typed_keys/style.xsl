<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- xsl:sort without data-type compares the typed sort key values (XSLT 2.0+ 13.1.2):
       amounts as decimals, rates as integers, not as strings. -->
  <xsl:template match="/rechnung">
    <r>
      <nach-betrag>
        <xsl:for-each select="position">
          <xsl:sort select="xs:decimal(menge) * xs:decimal(einzelpreis)"/>
          <p nr="{@nr}"/>
        </xsl:for-each>
      </nach-betrag>
      <nach-satz-absteigend>
        <xsl:for-each select="position">
          <xsl:sort select="xs:integer(@ust)" order="descending"/>
          <xsl:sort select="xs:decimal(menge)"/>
          <p nr="{@nr}"/>
        </xsl:for-each>
      </nach-satz-absteigend>
      <atomar>
        <xsl:for-each select="(19, 7, 100, 0.5)">
          <xsl:sort select="."/>
          <xsl:value-of select=". || ' '"/>
        </xsl:for-each>
      </atomar>
      <strings>
        <xsl:for-each select="position">
          <xsl:sort select="string(menge)"/>
          <p nr="{@nr}"/>
        </xsl:for-each>
      </strings>
    </r>
  </xsl:template>
</xsl:stylesheet>
